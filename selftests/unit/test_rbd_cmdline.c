// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests for telling from a qemu command line whether it uses RBD
 * disks of a pool (rbd_cmdline.c): every form qemu and libvirt write,
 * the near misses that must not match (a wrong match kills a healthy VM,
 * a missed one leaves a writer running after the fence), and command
 * lines that are cut, unterminated, huge, deeply nested or garbage. Each
 * command line is copied to a buffer of its exact size, so a read past
 * its end is caught under SANITIZE=1.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "alloc_count.h"
#include "rbd_cmdline.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define QEMU "qemu-system-x86_64"
/* argv as a NULL-terminated list, argv[0] first. */
#define ARGS(...) ((const char *const[]){ QEMU, __VA_ARGS__, NULL })

static char got[8][RBD_IMAGE_NAME_MAX];

/* The arguments, NUL after each, in a heap buffer of just that size. */
static char *build(const char *const *args, size_t *len)
{
	size_t n = 0, off = 0;
	char *buf;

	for (const char *const *a = args; *a; a++)
		n += strlen(*a) + 1;
	buf = malloc(n ? n : 1);
	cr_assert_not_null(buf);
	for (const char *const *a = args; *a; a++) {
		memcpy(buf + off, *a, strlen(*a) + 1);
		off += strlen(*a) + 1;
	}
	*len = n;
	return buf;
}

/* rbd_cmdline_disks() on exactly @len bytes of @s, copied. */
static int on_bytes(const char *s, size_t len, bool cut, const char *pool,
		    const char *ns)
{
	char *buf = malloc(len ? len : 1);
	int n;

	cr_assert_not_null(buf);
	memcpy(buf, s, len);
	memset(got, 'x', sizeof(got));
	n = rbd_cmdline_disks(buf, len, cut, pool, ns, got, ARRAY_SIZE(got));
	free(buf);
	return n;
}

static int disks(const char *const *args, const char *pool, const char *ns)
{
	size_t len;
	char *buf = build(args, &len);
	int n = on_bytes(buf, len, false, pool, ns);

	free(buf);
	return n;
}

static void expect_at(int line, const char *const *args, const char *pool,
		      const char *ns, int want, const char *image)
{
	int n = disks(args, pool, ns);

	cr_assert_eq(n, want, "line %d: %s (ns %s): %d disks, want %d", line,
		     pool, ns ? ns : "-", n, want);
	if (image)
		cr_assert_str_eq(got[0], image, "line %d", line);
	if (n <= 0)
		cr_assert_eq(got[0][0], 'x', "line %d: an image for no disk",
			     line);
}

/* The disks in @pool of command line @args: @want of them, @image first. */
#define expect(...) expect_at(__LINE__, __VA_ARGS__)
#define expect_none(args, pool, ns) expect_at(__LINE__, args, pool, ns, 0, NULL)

/* ---------------------------------------------------------------- */
/* -drive                                                           */

Test(rbd_drive, file_pool_image)
{
	expect(ARGS("-drive", "file=rbd:vms/vm1-disk0,format=raw,if=virtio"),
	       "vms", NULL, 1, "vm1-disk0");
	/* The storage's pool alone: of the default namespace "" too. */
	expect(ARGS("-drive", "file=rbd:vms/vm1-disk0"), "vms", "", 1,
	       "vm1-disk0");
	expect(ARGS("-drive", "if=none,id=d0,file=rbd:vms/img,cache=none"),
	       "vms", NULL, 1, "img");
}

Test(rbd_drive, snapshot_and_options)
{
	expect(ARGS("-drive", "file=rbd:vms/img@snap1,format=raw"), "vms", NULL,
	       1, "img");
	expect(ARGS("-drive",
		    "file=rbd:vms/img@snap1:conf=/etc/ceph/ceph.conf"),
	       "vms", NULL, 1, "img");
	expect(ARGS("-drive", "file=rbd:vms/img:id=admin:conf=/etc/ceph/c"),
	       "vms", NULL, 1, "img");
}

/* libvirt's -drive for a network disk before -blockdev (libvirt < 5.10). */
Test(rbd_drive, libvirt_escaped_colons)
{
	expect(ARGS("-drive",
		    "file=rbd:libvirt-pool/new-libvirt-image:id=libvirt:"
		    "key=AQBuZ3ZgXWuIIxAAn5H4a1T/TLs+bh3q8LrlTA==:"
		    "auth_supported=cephx\\;none:"
		    "mon_host=10.0.0.1\\:6789\\;10.0.0.2\\:6789\\;[fd00\\:\\:3]\\:6789,"
		    "format=raw,if=none,id=drive-virtio-disk0,cache=none"),
	       "libvirt-pool", NULL, 1, "new-libvirt-image");
}

Test(rbd_drive, namespace)
{
	const char *const *a = ARGS("-drive", "file=rbd:vms/tenant1/img");

	expect(a, "vms", "tenant1", 1, "img");
	expect_none(a, "vms", NULL);
	expect_none(a, "vms", "");
	expect_none(a, "vms", "tenant2");
	expect_none(a, "vms", "tenant");
	expect_none(a, "vms", "tenant11");
	/* An empty namespace is the default one. */
	expect(ARGS("-drive", "file=rbd:vms//img"), "vms", NULL, 1, "img");
	/* With a snapshot and options, the namespace is still the image's. */
	expect(ARGS("-drive", "file=rbd:vms/t1/img@s:conf=/etc/ceph/c"), "vms",
	       "t1", 1, "img");
	/* block/rbd.c: only the first '/' of the image part ends it. */
	expect(ARGS("-drive", "file=rbd:vms/t1/a/b"), "vms", "t1", 1, "a/b");
}

Test(rbd_drive, backslash_escapes)
{
	expect(ARGS("-drive", "file=rbd:my\\/pool/im\\:g:conf=/c"), "my/pool",
	       NULL, 1, "im:g");
	expect(ARGS("-drive", "file=rbd:vms/a\\@b:conf=/c"), "vms", NULL, 1,
	       "a@b");
	/* The image part's first plain '/' ends the namespace. */
	expect(ARGS("-drive", "file=rbd:vms/t\\/1/img"), "vms", "t/1", 1,
	       "img");
	expect(ARGS("-drive", "file=rbd:vms/t\\/1"), "vms", NULL, 1, "t/1");
	expect(ARGS("-drive", "file=rbd:v\\\\s/img"), "v\\s", NULL, 1, "img");
	/* A last backslash is itself. */
	expect(ARGS("-drive", "file=rbd:vms/img\\"), "vms", NULL, 1, "img\\");
}

/* QemuOpts: ",," is a comma inside a value, a lone ',' ends it. */
Test(rbd_drive, doubled_commas)
{
	expect(ARGS("-drive", "file=rbd:vms/img:conf=/etc/ceph/a,,b.conf,"
			      "format=raw"),
	       "vms", NULL, 1, "img");
	expect(ARGS("-drive", "file=rbd:v,,ms/i,,mg,format=raw"), "v,ms", NULL,
	       1, "i,mg");
	expect_none(ARGS("-drive", "file=rbd:v,,ms/img"), "v,,ms", NULL);
	expect_none(ARGS("-drive", "file=rbd:v,ms/img"), "v", NULL);
	/* Escaped as a filename once the commas are undone. */
	expect(ARGS("-drive", "file=rbd:vms/a\\,,b"), "vms", NULL, 1, "a,b");
}

Test(rbd_drive, option_spellings)
{
	expect(ARGS("--drive", "file=rbd:vms/img"), "vms", NULL, 1, "img");
	expect(ARGS("-drive=file=rbd:vms/img"), "vms", NULL, 1, "img");
	expect(ARGS("--drive=file=rbd:vms/img"), "vms", NULL, 1, "img");
	expect_none(ARGS("---drive", "file=rbd:vms/img"), "vms", NULL);
	expect_none(ARGS("-drives", "file=rbd:vms/img"), "vms", NULL);
	expect_none(ARGS("drive", "file=rbd:vms/img"), "vms", NULL);
	expect_none(ARGS("-drive", "-file=rbd:vms/img"), "vms", NULL);
}

Test(rbd_drive, driver_keys)
{
	expect(ARGS("-drive", "driver=rbd,pool=vms,image=img,if=virtio"), "vms",
	       NULL, 1, "img");
	expect(ARGS("-drive", "driver=rbd,pool=vms,namespace=t1,image=img"),
	       "vms", "t1", 1, "img");
	expect_none(ARGS("-drive", "driver=rbd,pool=vms,namespace=t1,image=i"),
		    "vms", NULL);
	expect(ARGS("-drive", "format=rbd,pool=vms,image=img"), "vms", NULL, 1,
	       "img");
	expect(ARGS("-drive", "file.driver=rbd,file.pool=vms,file.image=img,"
			      "format=raw,if=virtio"),
	       "vms", NULL, 1, "img");
	expect(ARGS("-drive", "driver=qcow2,file.driver=raw,"
			      "file.file.driver=rbd,file.file.pool=vms,"
			      "file.file.image=img"),
	       "vms", NULL, 1, "img");
	/* The old way: format=rbd over an rbd: filename, one disk. */
	expect(ARGS("-drive", "format=rbd,file=rbd:vms/img"), "vms", NULL, 1,
	       "img");
	expect(ARGS("-drive", "file.driver=rbd,file.filename=rbd:vms/img"),
	       "vms", NULL, 1, "img");
	expect(ARGS("-drive", "file.filename=rbd:vms/img,format=raw"), "vms",
	       NULL, 1, "img");
	/* A node's pool with no image names no image. */
	expect(ARGS("-drive", "driver=rbd,pool=vms"), "vms", NULL, 1, "");
}

/* QemuOpts: of a key given twice, the last counts. */
Test(rbd_drive, last_key_counts)
{
	const char *const *a =
		ARGS("-drive", "driver=rbd,pool=other,pool=vms,image=img");

	expect(a, "vms", NULL, 1, "img");
	expect_none(a, "other", NULL);
	expect_none(ARGS("-drive", "driver=rbd,pool=vms,driver=raw"), "vms",
		    NULL);
	expect(ARGS("-drive", "driver=raw,pool=vms,driver=rbd"), "vms", NULL, 1,
	       "");
}

/* A driver named for the node decides how its filename is read. */
Test(rbd_drive, explicit_driver_wins)
{
	expect_none(ARGS("-drive", "file=rbd:vms/img,file.driver=file"), "vms",
		    NULL);
	expect_none(ARGS("-drive", "file.driver=file,file.filename=rbd:vms/i"),
		    "vms", NULL);
	expect(ARGS("-drive", "file=rbd:vms/img,file.driver=rbd"), "vms", NULL,
	       1, "img");
}

Test(rbd_drive, json_filename)
{
	expect(ARGS("-drive",
		    "file=json:{\"driver\":\"rbd\",,\"pool\":\"vms\",,"
		    "\"image\":\"img\"},format=raw,if=none"),
	       "vms", NULL, 1, "img");
	expect(ARGS("-drive",
		    "file=json:{\"driver\":\"rbd\",,\"pool\":\"v,,s\",,"
		    "\"image\":\"img\"}"),
	       "v,s", NULL, 1, "img");
	/* json: filenames are flattened by qemu: dotted keys count. */
	expect(ARGS("-drive", "file=json:{\"driver\":\"raw\",,"
			      "\"file.driver\":\"rbd\",,\"file.pool\":\"vms\",,"
			      "\"file.image\":\"img\"}"),
	       "vms", NULL, 1, "img");
	expect(ARGS("-drive", "file=json:{\"filename\":\"rbd:vms/img\"}"),
	       "vms", NULL, 1, "img");
	expect_none(ARGS("-drive", "file=json:{\"driver\":\"rbd\",,"
				   "\"pool\":\"other\",,\"image\":\"img\"}"),
		    "vms", NULL);
}

Test(rbd_drive, shorthands)
{
	static const char *const names[] = { "-hda",	"-hdb", "-hdc",
					     "-hdd",	"-fda", "-fdb",
					     "-cdrom",	"-sd",	"-mtdblock",
					     "-pflash", "--hda" };

	for (unsigned int i = 0; i < ARRAY_SIZE(names); i++)
		expect(ARGS(names[i], "rbd:vms/img@s:conf=/c"), "vms", NULL, 1,
		       "img");
	/* Their value is a filename, verbatim: no ",,", no keys. */
	expect(ARGS("-hda", "rbd:v,,ms/img"), "v,,ms", NULL, 1, "img");
	expect_none(ARGS("-hda", "file=rbd:vms/img"), "vms", NULL);
	expect_none(ARGS("-hda", "driver=rbd,pool=vms,image=img"), "vms", NULL);
	expect(ARGS("-hda", "json:{\"driver\":\"rbd\",\"pool\":\"vms\","
			    "\"image\":\"img\"}"),
	       "vms", NULL, 1, "img");
}

Test(rbd_drive, many_disks)
{
	const char *const *a = ARGS(
		"-drive", "file=rbd:vms/a,format=raw", "-drive",
		"file=/var/lib/libvirt/images/b.qcow2", "-drive",
		"file=rbd:other/c", "-blockdev",
		"{\"driver\":\"rbd\",\"pool\":\"vms\",\"image\":\"d\"}", "-hdb",
		"rbd:vms/t1/e", "-drive", "driver=rbd,pool=vms,image=f");
	char images[2][RBD_IMAGE_NAME_MAX];
	char *buf;
	size_t len;

	expect(a, "vms", NULL, 3, "a");
	cr_assert_str_eq(got[1], "d");
	cr_assert_str_eq(got[2], "f");
	cr_assert_eq(got[3][0], 'x');
	expect(a, "vms", "t1", 1, "e");
	expect(a, "other", NULL, 1, "c");

	buf = build(a, &len);
	memset(images, 'y', sizeof(images));
	cr_assert_eq(rbd_cmdline_disks(buf, len, false, "vms", NULL, images, 1),
		     3);
	cr_assert_str_eq(images[0], "a");
	cr_assert_eq(images[1][0], 'y');
	cr_assert_eq(rbd_cmdline_disks(buf, len, false, "vms", NULL, NULL, 8),
		     3);
	cr_assert_eq(rbd_cmdline_disks(buf, len, false, "vms", NULL, images, 0),
		     3);
	free(buf);
}

Test(rbd_drive, long_image_name_cut)
{
	char arg[512], image[300];

	memset(image, 'i', sizeof(image) - 1);
	image[sizeof(image) - 1] = '\0';
	snprintf(arg, sizeof(arg), "file=rbd:vms/%s", image);
	expect(ARGS("-drive", arg), "vms", NULL, 1, NULL);
	cr_assert_eq(strlen(got[0]), RBD_IMAGE_NAME_MAX - 1);
	cr_assert(!strncmp(got[0], image, RBD_IMAGE_NAME_MAX - 1));
}

/* ---------------------------------------------------------------- */
/* -blockdev                                                        */

/* What libvirt 9 writes for an rbd disk with cephx and two monitors. */
#define LIBVIRT_STORAGE(pool, extra)                                          \
	"{\"driver\":\"rbd\",\"pool\":\"" pool "\"," extra                    \
	"\"image\":\"vm1-disk0\",\"server\":[{\"host\":\"10.0.0.1\","         \
	"\"port\":\"6789\"},{\"host\":\"10.0.0.2\",\"port\":\"6789\"}],"      \
	"\"user\":\"libvirt\",\"auth-client-required\":[\"cephx\",\"none\"]," \
	"\"key-secret\":\"libvirt-1-storage-auth-secret0\","                  \
	"\"node-name\":\"libvirt-1-storage\",\"cache\":{\"direct\":true,"     \
	"\"no-flush\":false},\"auto-read-only\":true,\"discard\":\"unmap\"}"
#define LIBVIRT_FORMAT                                                       \
	"{\"node-name\":\"libvirt-1-format\",\"read-only\":false,"           \
	"\"cache\":{\"direct\":true,\"no-flush\":false},\"driver\":\"raw\"," \
	"\"file\":\"libvirt-1-storage\"}"

Test(rbd_blockdev, libvirt_json)
{
	const char *const *a =
		ARGS("-name", "guest=vm1,debug-threads=on", "-uuid",
		     "12345678-1234-1234-1234-123456789abc", "-object",
		     "{\"qom-type\":\"secret\",\"id\":\"libvirt-1-storage-auth-"
		     "secret0\",\"data\":\"c2VjcmV0\",\"format\":\"base64\"}",
		     "-blockdev", LIBVIRT_STORAGE("libvirt-pool", ""),
		     "-blockdev", LIBVIRT_FORMAT, "-device",
		     "{\"driver\":\"virtio-blk-pci\",\"drive\":\"libvirt-1-"
		     "format\",\"id\":\"virtio-disk0\",\"bootindex\":1}");

	expect(a, "libvirt-pool", NULL, 1, "vm1-disk0");
	expect_none(a, "libvirt", NULL);
	expect_none(a, "libvirt-pool", "ns");
	expect(ARGS("-blockdev",
		    LIBVIRT_STORAGE("libvirt-pool", "\"namespace\":\"t1\",")),
	       "libvirt-pool", "t1", 1, "vm1-disk0");
	expect_none(ARGS("-blockdev", LIBVIRT_STORAGE("libvirt-pool",
						      "\"namespace\":\"t1\",")),
		    "libvirt-pool", NULL);
	expect(ARGS("-blockdev",
		    LIBVIRT_STORAGE("libvirt-pool", "\"namespace\":\"\",")),
	       "libvirt-pool", NULL, 1, "vm1-disk0");
}

/* Written by hand: JSON's whitespace anywhere between tokens. */
Test(rbd_blockdev, json_whitespace)
{
	expect(ARGS("-blockdev", "{\"driver\" : \"rbd\",\n\t\"pool\":\"vms\",\n"
				 "\t\"image\"\t:\n\"img\" }\n"),
	       "vms", NULL, 1, "img");
}

Test(rbd_blockdev, nested_nodes)
{
	expect(ARGS("-blockdev",
		    "{\"driver\":\"raw\",\"node-name\":\"f\",\"file\":"
		    "{\"driver\":\"rbd\",\"pool\":\"vms\",\"image\":\"img\"}}"),
	       "vms", NULL, 1, "img");
	expect(ARGS("-blockdev",
		    "{\"driver\":\"qcow2\",\"file\":{\"driver\":\"raw\","
		    "\"file\":{\"driver\":\"rbd\",\"pool\":\"vms\","
		    "\"image\":\"top\"}},\"backing\":{\"driver\":\"raw\","
		    "\"file\":{\"driver\":\"rbd\",\"pool\":\"vms\","
		    "\"image\":\"base\"}}}"),
	       "vms", NULL, 2, "top");
	cr_assert_str_eq(got[1], "base");
	/* A quorum's children are nodes too. */
	expect(ARGS("-blockdev",
		    "{\"driver\":\"quorum\",\"vote-threshold\":1,\"children\":"
		    "[{\"driver\":\"rbd\",\"pool\":\"a\",\"image\":\"x\"},"
		    "{\"driver\":\"rbd\",\"pool\":\"vms\",\"image\":\"y\"}]}"),
	       "vms", NULL, 1, "y");
	/* Dotted keys in an object, as json: filenames have them. */
	expect(ARGS("-blockdev",
		    "{\"driver\":\"raw\",\"file.driver\":\"rbd\","
		    "\"file.pool\":\"vms\",\"file.image\":\"img\"}"),
	       "vms", NULL, 1, "img");
}

Test(rbd_blockdev, dotted)
{
	expect(ARGS("-blockdev", "driver=rbd,pool=vms,image=img,node-name=n1"),
	       "vms", NULL, 1, "img");
	expect(ARGS("-blockdev", "driver=rbd,pool=vms,namespace=t1,image=img"),
	       "vms", "t1", 1, "img");
	expect(ARGS("-blockdev", "driver=raw,node-name=f,file.driver=rbd,"
				 "file.pool=vms,file.image=img"),
	       "vms", NULL, 1, "img");
	expect(ARGS("--blockdev", "driver=rbd,pool=vms,image=img"), "vms", NULL,
	       1, "img");
	expect(ARGS("-blockdev=driver=rbd,pool=vms,image=img"), "vms", NULL, 1,
	       "img");
	/* In -blockdev, file= names another node, never a filename. */
	expect_none(ARGS("-blockdev", "driver=raw,file=rbd:vms/img"), "vms",
		    NULL);
	/* A node reference is no disk of its own: the rbd node is one. */
	expect(ARGS("-blockdev", "driver=rbd,pool=vms,image=img,node-name=s",
		    "-blockdev", "driver=raw,node-name=f,file=s"),
	       "vms", NULL, 1, "img");
}

Test(rbd_blockdev, json_escapes)
{
	/* No "rbd" spelt out: the \u escape is read all the same. */
	expect(ARGS("-blockdev", "{\"driver\":\"\\u0072bd\",\"pool\":\"vms\","
				 "\"image\":\"img\"}"),
	       "vms", NULL, 1, "img");
	expect(ARGS("-blockdev",
		    "{\"driver\":\"rbd\",\"pool\":\"v\\/m\\u00e9\","
		    "\"image\":\"i\\\"g\"}"),
	       "v/m\xc3\xa9", NULL, 1, "i\"g");
	/* A \u0000 in a JSON string: jansson refuses it, so does qemu. */
	expect(ARGS("-blockdev", "{\"driver\":\"rbd\",\"pool\":\"vms\\u0000x\","
				 "\"image\":\"img\"}"),
	       "vms", NULL, -EBADMSG, NULL);
}

/* ---------------------------------------------------------------- */
/* What is not a disk of the pool                                   */

Test(rbd_not, other_pools)
{
	expect_none(ARGS("-drive", "file=rbd:other/img"), "vms", NULL);
	expect_none(ARGS("-drive", "driver=rbd,pool=other,image=img"), "vms",
		    NULL);
	expect_none(ARGS("-blockdev", LIBVIRT_STORAGE("other", "")), "vms",
		    NULL);
	expect_none(ARGS("-hda", "rbd:other/img"), "vms", NULL);
}

Test(rbd_not, similar_names)
{
	static const char *const pools[] = { "pool2", "poo",   "Pool",	"POOL",
					     "pool ", " pool", "pool\\" };
	char drive[64], json[128], dotted[64];

	for (unsigned int i = 0; i < ARRAY_SIZE(pools); i++) {
		snprintf(drive, sizeof(drive), "file=rbd:%s/img", pools[i]);
		snprintf(json, sizeof(json),
			 "{\"driver\":\"rbd\",\"pool\":\"%s\",\"image\":\"i\"}",
			 !strcmp(pools[i], "pool\\") ? "pool\\\\" : pools[i]);
		snprintf(dotted, sizeof(dotted), "driver=rbd,pool=%s,image=i",
			 pools[i]);
		expect_none(ARGS("-drive", drive), "pool", NULL);
		expect_none(ARGS("-blockdev", json), "pool", NULL);
		expect_none(ARGS("-blockdev", dotted), "pool", NULL);
		expect(ARGS("-blockdev", json), pools[i], NULL, 1, "i");
		expect(ARGS("-blockdev", dotted), pools[i], NULL, 1, "i");
	}
	expect_none(ARGS("-drive", "file=rbd:pool/img"), "pool2", NULL);
	expect_none(ARGS("-drive", "file=rbd:pool/img"), "poo", NULL);
	expect_none(ARGS("-drive", "file=rbd:pool/img"), "", NULL);
}

Test(rbd_not, namespaces)
{
	const char *const *in_t1 = ARGS(
		"-blockdev",
		"{\"driver\":\"rbd\",\"pool\":\"vms\",\"namespace\":\"t1\","
		"\"image\":\"i\"}");
	const char *const *in_default =
		ARGS("-blockdev",
		     "{\"driver\":\"rbd\",\"pool\":\"vms\",\"image\":\"i\"}");

	expect_none(in_t1, "vms", NULL);
	expect_none(in_t1, "vms", "");
	expect_none(in_t1, "vms", "t");
	expect_none(in_t1, "vms", "t10");
	expect_none(in_t1, "vms", "T1");
	expect_none(in_default, "vms", "t1");
	expect(in_default, "vms", "", 1, "i");
	expect_none(ARGS("-drive", "driver=rbd,pool=vms,image=i,namespace=t1"),
		    "vms", "t2");
	expect_none(ARGS("-drive", "file=rbd:vms/img"), "vms", "t1");
}

Test(rbd_not, rbd_in_another_value)
{
	expect_none(ARGS("-drive",
			 "file=/var/lib/vm.qcow2,serial=file=rbd:vms/i"),
		    "vms", NULL);
	expect_none(ARGS("-drive", "file=/v.img,id=file=rbd:vms/i,if=virtio"),
		    "vms", NULL);
	expect_none(ARGS("-drive", "file=/v.img,,file=rbd:vms/i"), "vms", NULL);
	expect_none(ARGS("-drive", "media=cdrom,xfile=rbd:vms/i"), "vms", NULL);
	expect_none(ARGS("-drive", "driver=rbdx,pool=vms,image=i"), "vms",
		    NULL);
	expect_none(ARGS("-drive", "driver=rb,pool=vms,image=i"), "vms", NULL);
	expect_none(ARGS("-drive", "xdriver=rbd,pool=vms,image=i"), "vms",
		    NULL);
	expect_none(ARGS("-append", "root=/dev/vda file=rbd:vms/i"), "vms",
		    NULL);
	expect_none(ARGS("-name", "rbd:vms/img"), "vms", NULL);
	expect_none(ARGS("-fw_cfg", "name=opt/x,string=file=rbd:vms/i"), "vms",
		    NULL);
	expect_none(ARGS("-device", "virtio-blk-pci,drive=rbd:vms/i"), "vms",
		    NULL);
	expect_none(ARGS("-object",
			 "{\"qom-type\":\"secret\",\"driver\":\"rbd\","
			 "\"pool\":\"vms\",\"image\":\"i\"}"),
		    "vms", NULL);
	expect_none(ARGS("file=rbd:vms/i", "rbd:vms/i", "driver=rbd,pool=vms"),
		    "vms", NULL);
	/* argv[0] is the program, never an option. */
	expect_none(((const char *const[]){ "-hda", "rbd:vms/img", NULL }),
		    "vms", NULL);
	/* An option's value is its own, even one that looks like -drive. */
	expect_none(ARGS("-drive", "-drive", "file=rbd:vms/img"), "vms", NULL);
}

Test(rbd_not, paths_with_rbd)
{
	expect_none(ARGS("-drive", "file=/var/lib/rbd:vms/img.qcow2"), "vms",
		    NULL);
	expect_none(ARGS("-drive", "file=./rbd:vms/img"), "vms", NULL);
	expect_none(ARGS("-drive", "file= rbd:vms/img"), "vms", NULL);
	expect_none(ARGS("-drive", "file=RBD:vms/img"), "vms", NULL);
	expect_none(ARGS("-drive", "file=file:rbd:vms/img"), "vms", NULL);
	expect_none(ARGS("-hda", "/srv/rbd:vms/img"), "vms", NULL);
	expect_none(ARGS("-drive", "file=/rbd/vms/img,format=raw"), "vms",
		    NULL);
	/* No '/' after the pool: qemu refuses it, nothing runs on it. */
	expect_none(ARGS("-drive", "file=rbd:vms"), "vms", NULL);
	expect_none(ARGS("-drive", "file=rbd:vms\\/img"), "vms/img", NULL);
}

Test(rbd_not, json_near_misses)
{
	expect_none(ARGS("-blockdev", "{\"driver\":\"rbd\",\"pool\":\"other\","
				      "\"image\":\"vms\"}"),
		    "vms", NULL);
	expect_none(ARGS("-blockdev", "{\"driver\":\"file\",\"pool\":\"vms\","
				      "\"filename\":\"/rbd/vms/img\","
				      "\"node-name\":\"rbd\"}"),
		    "vms", NULL);
	expect_none(ARGS("-blockdev", "{\"driver\":\"raw\",\"pool\":\"vms\","
				      "\"file\":{\"driver\":\"rbd\","
				      "\"pool\":\"other\",\"image\":\"i\"}}"),
		    "vms", NULL);
	expect_none(ARGS("-blockdev",
			 "{\"driver\":[\"rbd\"],\"pool\":\"vms\"}"),
		    "vms", NULL);
	expect_none(ARGS("-blockdev", "{\"driver\":\"rbd\",\"pool\":[\"vms\"],"
				      "\"image\":\"i\"}"),
		    "vms", NULL);
	expect_none(ARGS("-blockdev", "{\"driver\":\"rbd\",\"pool\":\"vms\","
				      "\"namespace\":1,\"image\":\"i\"}"),
		    "vms", NULL);
	expect_none(ARGS("-blockdev", "{\"driver\":\"rbd\",\"pool\":\"vms\","
				      "\"image\":null}"),
		    "vms", NULL);
	expect_none(ARGS("-blockdev", "{\"driver\":\"raw\",\"file\":"
				      "\"rbd:vms/img\"}"),
		    "vms", NULL);
	expect_none(ARGS("-blockdev", "{\"Driver\":\"rbd\",\"pool\":\"vms\"}"),
		    "vms", NULL);
	/* -blockdev JSON starts with '{' or it is key=value. */
	expect_none(ARGS("-blockdev", " {\"driver\":\"rbd\",\"pool\":\"vms\"}"),
		    "vms", NULL);
}

/* ---------------------------------------------------------------- */
/* What cannot be read: a skip, never a guess                       */

Test(rbd_unreadable, json_jansson_refuses)
{
	/* qemu's parser refuses these too. */
	expect(ARGS("-blockdev",
		    "{\"driver\":\"rbd\",\"pool\":\"vms\",\"image\":\"i\"} x"),
	       "vms", NULL, -EBADMSG, NULL);
	expect(ARGS("-blockdev", "{\"driver\":\"rbd\",\"pool\":\"other\","
				 "\"pool\":\"vms\",\"image\":\"i\"}"),
	       "vms", NULL, -EBADMSG, NULL);
	expect(ARGS("-blockdev", "{\"driver\":\"rbd\",\"pool\":\"vms\""), "vms",
	       NULL, -EBADMSG, NULL);
	/* qemu takes single quotes; jansson does not: unreadable here. */
	expect(ARGS("-blockdev", "{'driver':'rbd','pool':'vms','image':'i'}"),
	       "vms", NULL, -EBADMSG, NULL);
	/* Broken JSON that never names rbd is no disk of it. */
	expect_none(ARGS("-blockdev", "{\"driver\":\"file\","), "vms", NULL);
}

Test(rbd_unreadable, a_disk_found_is_enough)
{
	expect(ARGS("-blockdev", "{\"driver\":\"rbd\",", "-drive",
		    "file=rbd:vms/img"),
	       "vms", NULL, 1, "img");
	expect(ARGS("-drive", "file=rbd:vms/img", "-blockdev",
		    "{\"driver\":\"rbd\","),
	       "vms", NULL, 1, "img");
	expect(ARGS("-drive", "file=rbd:other/img", "-blockdev",
		    "{\"driver\":\"rbd\","),
	       "vms", NULL, -EBADMSG, NULL);
}

Test(rbd_unreadable, invalid_utf8)
{
	/* jansson, like qemu, refuses JSON that is not UTF-8. */
	expect(ARGS("-blockdev", "{\"driver\":\"rbd\",\"pool\":\"v\xffms\","
				 "\"image\":\"i\"}"),
	       "v\xffms", NULL, -EBADMSG, NULL);
	expect(ARGS("-blockdev", "{\"driver\":\"rbd\",\"pool\":\"vms\","
				 "\"image\":\"\xc3\x28\"}"),
	       "vms", NULL, -EBADMSG, NULL);
	/* Elsewhere, names are bytes. */
	expect(ARGS("-drive", "file=rbd:v\xff\xfems/\xc3\x28"), "v\xff\xfems",
	       NULL, 1, "\xc3\x28");
	expect_none(ARGS("-drive", "file=rbd:v\xff\xfems/i"), "v\xffms", NULL);
	expect(ARGS("-drive", "driver=rbd,pool=\xe2\x82,image=\x80"),
	       "\xe2\x82", NULL, 1, "\x80");
}

/* ---------------------------------------------------------------- */
/* Hostile and odd command lines                                    */

Test(rbd_hostile, empty)
{
	char c = 'x';

	cr_assert_eq(rbd_cmdline_disks(NULL, 0, false, "vms", NULL, got, 8), 0);
	cr_assert_eq(rbd_cmdline_disks(&c, 0, false, "vms", NULL, got, 8), 0);
	cr_assert_eq(rbd_cmdline_disks(&c, 0, true, "vms", NULL, got, 8),
		     -E2BIG);
	cr_assert_eq(on_bytes("\0\0\0", 3, false, "vms", NULL), 0);
	cr_assert_eq(on_bytes("-drive", 6, false, "vms", NULL), 0);
	expect_none(ARGS("-drive"), "vms", NULL);
	expect_none(ARGS("-blockdev"), "vms", NULL);
	expect_none(ARGS("-drive", ""), "vms", NULL);
	expect_none(ARGS("-blockdev", ""), "vms", NULL);
	expect_none(ARGS("-drive", ",,,,,=,=rbd,"), "vms", NULL);
	expect_none(ARGS("-drive", "file=rbd:"), "vms", NULL);
	expect_none(ARGS("-drive", "file=rbd:/"), "vms", NULL);
	expect(ARGS("-drive", "file=rbd:/"), "", NULL, 1, "");
	expect_none(ARGS("-drive", "driver=rbd"), "vms", NULL);
	expect_none(ARGS("-drive", "driver=rbd,pool"), "vms", NULL);
}

/* A process may rewrite its command line without the last NUL. */
Test(rbd_hostile, missing_final_nul)
{
	static const char cl[] = QEMU "\0-drive\0file=rbd:vms/img";
	static const char json[] = QEMU "\0-blockdev\0{\"driver\":\"rbd\","
					"\"pool\":\"vms\",\"image\":\"i\"}";

	cr_assert_eq(on_bytes(cl, sizeof(cl) - 1, false, "vms", NULL), 1);
	cr_assert_str_eq(got[0], "img");
	cr_assert_eq(on_bytes(json, sizeof(json) - 1, false, "vms", NULL), 1);
	/* Cut: the unterminated argument is not looked at. */
	cr_assert_eq(on_bytes(cl, sizeof(cl) - 1, true, "vms", NULL), -E2BIG);
	cr_assert_eq(on_bytes(cl, sizeof(cl), true, "vms", NULL), 1);
	/* No NUL at all: argv[0] alone. */
	cr_assert_eq(
		on_bytes("-drive file=rbd:vms/img", 23, false, "vms", NULL), 0);
}

/* Every prefix of a command line, cut or not: no read past it. */
Test(rbd_hostile, every_truncation)
{
	const char *const *a = ARGS(
		"-name", "guest=vm1", "-drive",
		"file=rbd:vms/t1/img@s:id=admin:mon_host=a\\:1,,b,format=raw",
		"-blockdev", LIBVIRT_STORAGE("vms", "\"namespace\":\"t1\","),
		"-drive",
		"file=json:{\"driver\":\"rbd\",,\"pool\":\"vms\",,"
		"\"namespace\":\"t1\",,\"image\":\"j\"}",
		"-blockdev",
		"driver=raw,file.driver=rbd,file.pool=vms,"
		"file.namespace=t1,file.image=k");
	size_t len, ends[16], nends = 0;
	char *buf = build(a, &len);
	int n, whole, want;

	for (size_t i = 0; i < len; i++)
		if (!buf[i])
			ends[nends++] = i + 1;
	for (size_t cut = 0; cut <= len; cut++) {
		/* Cut: the disks of the arguments seen whole, else -E2BIG. */
		whole = 0;
		for (size_t e = 0; e < nends; e++)
			if (ends[e] <= cut)
				whole = (int)e;
		n = on_bytes(buf, cut, true, "vms", "t1");
		/* Arguments 4, 6, 8 and 10 (argv[0] is 0) are the disks. */
		want = (whole >= 4) + (whole >= 6) + (whole >= 8) +
		       (whole >= 10);
		cr_assert_eq(n, want ? want : -E2BIG, "cut at %zu of %zu: %d",
			     cut, len, n);
		/* Not said to be cut: whatever it says, within bounds. */
		n = on_bytes(buf, cut, false, "vms", "t1");
		cr_assert((n >= 0 && n <= 4) || n == -EBADMSG, "%zu: %d", cut,
			  n);
		n = on_bytes(buf, cut, false, "other", NULL);
		cr_assert(n == 0 || n == -EBADMSG, "%zu: %d", cut, n);
	}
	free(buf);
}

/* A long libvirt-like command line, the disk at the very end. */
Test(rbd_hostile, sixty_four_kib)
{
	size_t size = 64 * 1024, len = 0;
	char *buf = malloc(size);
	static const char tail[] = "-drive\0file=rbd:vms/last\0";
	static const char fill[] = "-drive\0file=/var/lib/libvirt/images/"
				   "disk.qcow2,format=qcow2,if=none\0";

	cr_assert_not_null(buf);
	memcpy(buf, QEMU, sizeof(QEMU));
	len = sizeof(QEMU);
	while (len + sizeof(fill) - 1 + sizeof(tail) - 1 <= size) {
		memcpy(buf + len, fill, sizeof(fill) - 1);
		len += sizeof(fill) - 1;
	}
	memcpy(buf + len, tail, sizeof(tail) - 1);
	len += sizeof(tail) - 1;
	cr_assert_eq(on_bytes(buf, len, false, "vms", NULL), 1);
	cr_assert_str_eq(got[0], "last");
	cr_assert_eq(on_bytes(buf, len, false, "vm", NULL), 0);
	/* The same, without "rbd" anywhere: the quick path. */
	memcpy(buf + len - 14, "zzz", 3);
	cr_assert(!memmem(buf, len, "rbd", 3));
	cr_assert_eq(on_bytes(buf, len, false, "vms", NULL), 0);

	/* One 64 KiB argument, its disk at the end. */
	len = sizeof(QEMU);
	memcpy(buf + len, "-drive", 7);
	len += 7;
	while (len < size - 64)
		buf[len++] = 'a';
	memcpy(buf + len - 20, ",file=rbd:vms/big", 18);
	cr_assert_eq(on_bytes(buf, len - 2, false, "vms", NULL), 1);
	cr_assert_str_eq(got[0], "big");
	free(buf);
}

static char *json_args(size_t pad, size_t *len)
{
	static const char head[] = QEMU "\0-blockdev\0{\"driver\":\"rbd\","
					"\"pool\":\"vms\",\"image\":\"i\","
					"\"x\":\"";
	char *buf = malloc(sizeof(head) + pad + 3);

	cr_assert_not_null(buf);
	memcpy(buf, head, sizeof(head) - 1);
	memset(buf + sizeof(head) - 1, 'p', pad);
	memcpy(buf + sizeof(head) - 1 + pad, "\"}", 3);
	*len = sizeof(head) - 1 + pad + 3;
	return buf;
}

Test(rbd_hostile, json_size_bound)
{
	size_t len, json_len = 0;
	char *buf = json_args(0, &len);

	cr_assert_eq(on_bytes(buf, len, false, "vms", NULL), 1);
	json_len = strlen(buf + sizeof(QEMU) + 10);
	free(buf);
	buf = json_args(RBD_JSON_MAX - json_len, &len);
	cr_assert_eq(on_bytes(buf, len, false, "vms", NULL), 1);
	free(buf);
	buf = json_args(RBD_JSON_MAX - json_len + 1, &len);
	cr_assert_eq(on_bytes(buf, len, false, "vms", NULL), -E2BIG);
	free(buf);
}

/* [[[...{"driver":"rbd",...}...]]]: @depth levels in all. */
static void nested(char *buf, size_t size, unsigned int depth)
{
	static const char node[] =
		"{\"driver\":\"rbd\",\"pool\":\"vms\",\"image\":\"deep\"}";
	size_t n = 0;

	cr_assert_lt(2 * depth + sizeof(node), size);
	for (unsigned int i = 1; i < depth; i++)
		buf[n++] = '[';
	memcpy(buf + n, node, sizeof(node) - 1);
	n += sizeof(node) - 1;
	for (unsigned int i = 1; i < depth; i++)
		buf[n++] = ']';
	buf[n] = '\0';
}

Test(rbd_hostile, deep_json)
{
	static char json[300000];
	char arg[512];

	for (unsigned int d = 1; d <= RBD_JSON_DEPTH + 1; d++) {
		nested(json, sizeof(json), d);
		snprintf(arg, sizeof(arg), "json:%s", json);
		expect(ARGS("-hda", arg), "vms", NULL,
		       d <= RBD_JSON_DEPTH ? 1 : -E2BIG, NULL);
		snprintf(arg, sizeof(arg), "{\"driver\":\"raw\",\"x\":%s}",
			 json);
		expect(ARGS("-blockdev", arg), "vms", NULL,
		       d < RBD_JSON_DEPTH ? 1 : -E2BIG, NULL);
	}
	/* Far deeper than jansson's own limit (2048), and unbalanced. */
	memset(json, '[', sizeof(json) - 1);
	json[sizeof(json) - 1] = '\0';
	memcpy(json, "json:", 5);
	memcpy(json + 1000, "\"rbd\"", 5);
	expect(ARGS("-hda", json), "vms", NULL, -E2BIG, NULL);
	for (size_t i = 0; i + 8 < 60000; i += 8)
		memcpy(json + i, "{\"rbd\": ", 8);
	json[60000] = '\0';
	expect(ARGS("-blockdev", json), "vms", NULL, -E2BIG, NULL);
	/* Brackets inside strings are no depth. */
	expect(ARGS("-blockdev", "{\"x\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
				 "[[[[[[[[[[\",\"driver\":\"rbd\","
				 "\"pool\":\"vms\",\"image\":\"i\\\"[[\"}"),
	       "vms", NULL, 1, "i\"[[");
}

Test(rbd_hostile, json_filename_nesting)
{
	expect(ARGS("-hda", "json:{\"filename\":\"json:{\\\"filename\\\":"
			    "\\\"rbd:vms/img\\\"}\"}"),
	       "vms", NULL, 1, "img");
	expect(ARGS("-hda", "json:{\"filename\":\"json:{\\\"filename\\\":"
			    "\\\"json:{\\\\\\\"filename\\\\\\\":"
			    "\\\\\\\"rbd:vms/img\\\\\\\"}\\\"}\"}"),
	       "vms", NULL, -E2BIG, NULL);
}

/* Past RBD_ARG_NODES rbd nodes or RBD_ARG_KEYS keys in one argument. */
Test(rbd_hostile, many_nodes)
{
	static char arg[RBD_ARG_KEYS * 40];
	size_t n = 0;

	for (unsigned int i = 0; i < RBD_ARG_NODES; i++)
		n += (size_t)snprintf(arg + n, sizeof(arg) - n,
				      "n%u.driver=rbd,n%u.pool=vms,", i, i);
	expect(ARGS("-drive", arg), "vms", NULL, RBD_ARG_NODES, "");
	n += (size_t)snprintf(arg + n, sizeof(arg) - n,
			      "x.driver=rbd,x.pool=vms,");
	/* Past the nodes: the ones read still count. */
	expect(ARGS("-drive", arg), "vms", NULL, RBD_ARG_NODES, "");
	expect(ARGS("-drive", arg), "other", NULL, -E2BIG, NULL);
	n = 0;
	for (unsigned int i = 0; i <= RBD_ARG_KEYS; i++)
		n += (size_t)snprintf(arg + n, sizeof(arg) - n, "n%u.pool=p,",
				      i);
	snprintf(arg + n, sizeof(arg) - n, "driver=rbd");
	expect(ARGS("-drive", arg), "vms", NULL, -E2BIG, NULL);
	/* Other keys are not counted. */
	n = 0;
	for (unsigned int i = 0; i <= 4 * RBD_ARG_KEYS; i++)
		n += (size_t)snprintf(arg + n, sizeof(arg) - n, "k%u=v,", i);
	snprintf(arg + n, sizeof(arg) - n, "file=rbd:vms/i");
	expect(ARGS("-drive", arg), "vms", NULL, 1, "i");
}

/* Quadratic work would show here: RBD_CMDLINE_MAX of rbd keys. */
Test(rbd_hostile, big_and_bounded)
{
	size_t size = RBD_CMDLINE_MAX, len;
	struct timespec t0, t1;
	char *buf = malloc(size);
	static const char unit[] = "driver=rbd,pool=vms,";

	cr_assert_not_null(buf);
	memcpy(buf, QEMU "\0-drive\0", sizeof(QEMU) + 7);
	len = sizeof(QEMU) + 7;
	while (len + sizeof(unit) < size) {
		memcpy(buf + len, unit, sizeof(unit) - 1);
		len += sizeof(unit) - 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(on_bytes(buf, len, false, "vms", NULL), 1);
	cr_assert_eq(on_bytes(buf, len, false, "x", NULL), 0);
	/* As many separate -drive rbd: arguments. */
	len = sizeof(QEMU);
	while (len + 30 < size) {
		memcpy(buf + len, "-drive\0file=rbd:vms/i\0", 22);
		len += 22;
	}
	cr_assert_eq(on_bytes(buf, len, false, "vms", NULL),
		     (int)((len - sizeof(QEMU)) / 22));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* Generous: a few ms here; quadratic would take minutes. */
	cr_assert_lt(t1.tv_sec - t0.tv_sec, 20);
	free(buf);
}

/* Arguments made of the tokens the parsers care about, at random. */
Test(rbd_hostile, garbage)
{
	static const char *const tokens[] = {
		"rbd:",	 "rbd",	    "-drive", "--blockdev", "-hda", "\0",
		"{",	 "}",	    "[",      "]",	    "\"",   "\\",
		"\\u",	 "\\u0072", ",",      ",,",	    "=",    ":",
		"/",	 "@",	    "json:",  "driver",	    "pool", "vms",
		"file.", "file=",   "\xff",   "\xc3",	    " ",    "filename",
	};
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	char buf[512];
	size_t len;
	int n;

	for (unsigned int round = 0; round < 20000; round++) {
		len = 0;
		while (len < sizeof(buf) - 16) {
			const char *t;
			size_t tl;

			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			if (x % 23 == 0)
				break;
			t = tokens[(x >> 8) % ARRAY_SIZE(tokens)];
			tl = t[0] ? strlen(t) : 1;
			memcpy(buf + len, t, tl);
			len += tl;
		}
		n = on_bytes(buf, len, x & 1, "vms", (x & 2) ? "t" : NULL);
		cr_assert(n >= 0 || n == -E2BIG || n == -EBADMSG, "%d", n);
	}
}

/* ---------------------------------------------------------------- */
/* Allocation: none on the common path, none left, failure told     */

TestSuite(rbd_alloc, .init = counting_init, .fini = counting_fini);

Test(rbd_alloc, none_without_json)
{
	/* Any allocation jansson tried would fail, and show. */
	fail_after(0);
	expect(ARGS("-name", "guest=vm1", "-blockdev",
		    "{\"driver\":\"file\",\"filename\":\"/v.img\"}", "-drive",
		    "file=/var/lib/v.qcow2,if=virtio"),
	       "vms", NULL, 0, NULL);
	expect(ARGS("-drive", "file=rbd:vms/img", "-drive",
		    "driver=rbd,pool=vms,image=i2", "-blockdev",
		    "driver=raw,file.driver=rbd,file.pool=vms,file.image=i3"),
	       "vms", NULL, 3, "img");
	/* JSON that does not spell rbd out is not parsed either. */
	expect(ARGS("-blockdev", "{\"driver\":\"qcow2\",\"file\":\"f\"}",
		    "-name", "rbd"),
	       "vms", NULL, 0, NULL);
	cr_assert_eq(alloc_failed, 0, "an allocation on the common path");
	cr_assert_eq(live_allocs, 0);
}

Test(rbd_alloc, json_frees_all_and_fails_cleanly)
{
	const char *const *a =
		ARGS("-blockdev", LIBVIRT_STORAGE("vms", ""), "-drive",
		     "file=json:{\"driver\":\"raw\",,\"file\":{\"driver\":"
		     "\"rbd\",,\"pool\":\"vms\",,\"image\":\"j\"}}");
	long n;
	int ret;

	expect(a, "vms", NULL, 2, "vm1-disk0");
	cr_assert_eq(live_allocs, 0, "%ld leaked", live_allocs);
	for (n = 0;; n++) {
		fail_after(n);
		ret = disks(a, "vms", NULL);
		cr_assert_eq(live_allocs, 0, "failing allocation %ld leaks", n);
		if (!alloc_failed)
			break;
		/* One of the two parsed: still a victim, else not known. */
		cr_assert(ret == 1 || ret == -ENOMEM || ret == -EBADMSG,
			  "allocation %ld failed: %d", n, ret);
		cr_assert_lt(n, 10000);
	}
	cr_assert_eq(ret, 2);
	fail_after(0);
	expect(ARGS("-blockdev", LIBVIRT_STORAGE("vms", "")), "vms", NULL,
	       -ENOMEM, NULL);
	cr_assert_eq(live_allocs, 0);
}
