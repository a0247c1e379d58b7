/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Whether a qemu process uses RBD disks of a pool, from its command line.
 *
 * librbd reaches the cluster over sockets: a VM on RBD has no fd, no
 * mapping and no device on the storage, so the fd/maps search of
 * victims.c sees nothing. What names its disks is the command line qemu
 * was started with, in the forms qemu and libvirt write:
 *
 *   -drive file=rbd:POOL/IMAGE[@SNAP][:key=value...],...
 *   -drive file=rbd:POOL/NAMESPACE/IMAGE...      (qemu >= 5.0)
 *   -drive driver=rbd,pool=POOL,namespace=NS,image=IMAGE,...
 *   -drive file.driver=rbd,file.pool=POOL,...,format=raw
 *   -drive file=json:{"driver":"rbd",,"pool":"POOL",,...}
 *   -blockdev {"driver":"rbd","pool":"POOL","namespace":"NS","image":...}
 *   -blockdev {"driver":"raw","file":{"driver":"rbd",...}}  (nested nodes)
 *   -blockdev driver=rbd,pool=POOL,image=IMAGE,node-name=...
 *   -blockdev driver=raw,file.driver=rbd,file.pool=POOL,...
 *   -hda ... -hdd, -fda, -fdb, -cdrom, -sd, -mtdblock, -pflash rbd:POOL/...
 *
 * Each option may be spelt with one dash or two, its value in the next
 * argument or after '=' in the same one. qemu itself takes only the
 * former (it exits on "-drive=..."): the latter can only ever match a
 * wrapper script, never a running qemu.
 *
 * How qemu reads them, and so how they are read here:
 * - "-drive" values (QemuOpts) and "-blockdev" dotted values (keyval)
 *   are key=value pairs split at ',', ",," standing for a comma; in
 *   -drive, "file" is the filename of the node "file." below the format
 *   node. A node is a prefix P ("", "file.", "file.file.", "backing."...):
 *   it is an rbd node when P "driver" is "rbd", or when it has no driver
 *   and its P "filename" starts with "rbd:" (qemu picks the protocol from
 *   the prefix; "json:" is a node in JSON). Of a key given twice, the
 *   last counts (QemuOpts' rule).
 * - "rbd:" filenames as qemu's block/rbd.c splits them: the pool up to
 *   the first '/', then the image up to '@' (when the rest has one) or
 *   ':'; an image part with a '/' is NAMESPACE/IMAGE. A backslash makes
 *   the next character plain ("\:", "\/", "\@", "\\").
 * - "-blockdev" values starting with '{' are JSON (jansson, as strict as
 *   qemu's parser: one value, UTF-8, no duplicate keys); every object,
 *   nested at any depth, is a node, and its keys may be dotted too (as
 *   in json: filenames, which qemu flattens).
 * Anything else is not a disk: "rbd:" inside another key's value, a path
 * that merely contains "rbd:", an option qemu does not read as a drive.
 *
 * Matching: the pool byte for byte (case-sensitive, no normalisation).
 * The namespace likewise: a storage without one (NULL or "") matches
 * only disks in the default namespace (no namespace given, or ""), and a
 * storage with one matches only disks in exactly that namespace. RADOS
 * namespaces are separate object spaces: a host fenced from one has its
 * writes to the others untouched, so they are not its victims.
 *
 * Hostile input: a command line is whatever its process wrote (any
 * process may rewrite its own). Nothing past @len is read, no NUL is
 * needed at the end, no byte value is special but NUL. Work is linear in
 * @len: per argument, at most RBD_ARG_NODES nodes that may be rbd ones
 * and RBD_ARG_KEYS pool/namespace/image/driver/filename keys are looked
 * at, and a JSON
 * argument is parsed only up to RBD_JSON_MAX bytes and RBD_JSON_DEPTH
 * levels (checked before jansson sees it). Nothing is allocated unless
 * the command line has "rbd" in it (or a JSON \u escape): the JSON parser
 * is the only allocator, and frees all it took before returning.
 */
#ifndef IOFENCE_RBD_CMDLINE_H
#define IOFENCE_RBD_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* An image name as reported: longer ones are cut, still NUL-terminated. */
#define RBD_IMAGE_NAME_MAX 128
/* Per argument: past these, the argument is one this cannot read. */
#define RBD_ARG_NODES 16
#define RBD_ARG_KEYS 64
#define RBD_JSON_MAX (64 * 1024)
#define RBD_JSON_DEPTH 32
/* json: filenames inside json: filenames, past the argument's own. */
#define RBD_JSON_NEST 2
/*
 * What the victim search reads of a command line: libvirt's, with a
 * -blockdev of some 400 bytes per disk, stay far below it. It is
 * allocated once per search, not on a worker's 256 KiB stack.
 */
#define RBD_CMDLINE_MAX (256 * 1024)

/*
 * The RBD disks in @pool (and namespace @ns: NULL or "" for the default
 * one) named by the command line @cmdline, @len bytes, its arguments
 * separated by NULs (a last one without its NUL is still an argument).
 * @cut: the command line was longer than @len (rbd_cmdline_read() said
 * so): its last argument may be cut short and is not looked at, and what
 * follows was not seen.
 *
 * Returns the number of such disks, each rbd node counted once (a node
 * of another pool or namespace is not counted); the first @max images
 * are written to @images ("" for a node that names none). A negative
 * errno when none was found but the command line could not all be read:
 * -E2BIG (@cut, or an argument naming rbd past a bound above), -EBADMSG
 * (a JSON argument naming rbd that is not JSON jansson reads), -ENOMEM.
 * The caller cannot tell then whether the process is a victim: it is a
 * skip, counted, like a process whose /proc entries cannot be read.
 *
 * How the victim search of an rbd storage calls it (victims.c, with the
 * filter and the passes it has for every storage):
 * - the candidates are the processes matching the victims filter by
 *   executable name, with their pidfd opened first, as for any storage;
 * - pass 1 (no mmap lock) finds nothing for an rbd storage: librbd holds
 *   no fd on it, only sockets to the monitors and OSDs, which name no
 *   pool. So the command line is read in pass 2, the pass that may take
 *   a process's mmap lock, in place of the maps: rbd_cmdline_read() into
 *   one RBD_CMDLINE_MAX buffer per search, then rbd_cmdline_disks() on
 *   it; > 0 is a victim ("rbd disk"), killed at once; < 0 a skip. The
 *   same buffer gives the VM uuid (qemu's -uuid), so pass 3 reads nothing
 *   more for it;
 * - reading /proc/<pid>/cmdline takes the process's mmap lock
 *   (access_remote_vm()), which a qemu in D state may hold (stuck on a
 *   dead file storage beside the rbd one, or in a page fault): it runs on
 *   a worker of the pool, never on the fencing core, and after pass 1 has
 *   reported every victim it can, like every maps and cmdline read.
 *   A read that blocks takes only its worker: the fence completes or
 *   escalates at G without the search, which then reports itself
 *   incomplete, and the next search goes to another worker.
 * This file only parses; it never touches a storage.
 */
int rbd_cmdline_disks(const char *cmdline, size_t len, bool cut,
		      const char *pool, const char *ns,
		      char (*images)[RBD_IMAGE_NAME_MAX], unsigned int max);

/*
 * Reads the command line of the process whose /proc directory is @dirfd
 * into @buf, at most @size bytes: its length, or a negative errno. *cut
 * when there was more. Takes the process's mmap lock: on a worker only
 * (see above). An exited process reads as empty.
 */
ssize_t rbd_cmdline_read(int dirfd, char *buf, size_t size, bool *cut);

#endif
