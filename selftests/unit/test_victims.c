// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests for finding the processes that write to a lost storage
 * (victims.c), on real processes: copies of sleep and sh named like qemu,
 * each using a private tmpfs (the storage) in one way, beside processes
 * that must never be taken for victims. A wrong answer either leaves a
 * writer running after the fence or kills a bystander.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/loop.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "rbd_cmdline.h"
#include "victims.h"
#include "victims_probe.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define QEMU "qemu-system-x86_64"
#define UUID "12345678-1234-1234-1234-123456789abc"
#define UUID2 "ABCDEF01-2345-6789-ABCD-EF0123456789"
#define PF_KTHREAD 0x00200000
/* Holders of pids for the fake /proc trees take most of these. */
#define MAX_KIDS 160

static char *const qemu_pattern[] = { "qemu-system-*" };
static char *const any_pattern[] = { "*" };

/* ---------------------------------------------------------------- */
/* Files                                                            */

static void join(char *buf, size_t len, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);

	cr_assert(n > 0 && (size_t)n < len, "path too long: %s/%s", dir, name);
}

static void write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s));
	close(fd);
}

static void copy_file(const char *from, const char *to, mode_t mode)
{
	char buf[65536];
	int in, out;
	ssize_t n;

	in = open(from, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(in, 0, "open %s: %s", from, strerror(errno));
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	cr_assert_geq(out, 0, "open %s: %s", to, strerror(errno));
	while ((n = read(in, buf, sizeof(buf))) > 0)
		cr_assert_eq(write(out, buf, (size_t)n), n);
	cr_assert_eq(n, 0);
	close(in);
	close(out);
}

/* mkdir -p of @path below @root. */
static void make_dirs(const char *root, const char *path)
{
	char buf[PATH_MAX];
	size_t n;

	join(buf, sizeof(buf), root, path);
	n = strlen(root) + 1;
	for (char *p = buf + n;; p++) {
		if (*p == '/' || !*p) {
			char c = *p;

			*p = '\0';
			cr_assert(!mkdir(buf, 0755) || errno == EEXIST,
				  "mkdir %s: %s", buf, strerror(errno));
			*p = c;
			if (!c)
				break;
		}
	}
}

static int rm_one(const char *path, const struct stat *st, int type,
		  struct FTW *ftw)
{
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

static void rm_tree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Open fds of this process, to see that every path closes what it opens. */
static int count_fds(void)
{
	struct dirent *de;
	DIR *dir;
	int n = 0;

	dir = opendir("/proc/self/fd");
	cr_assert_not_null(dir);
	while ((de = readdir(dir)))
		n += de->d_name[0] != '.';
	closedir(dir);
	return n - 1;
}

/* ---------------------------------------------------------------- */
/* The storage and the processes around it                          */

static struct {
	char work[64]; /* on the root file system: the binaries */
	char store[96]; /* a tmpfs mounted here is the storage */
	char disk[128]; /* a file on the storage */
	char qemu[96]; /* sleep, named like qemu, not on the storage */
	char bystander[96]; /* sleep under another name */
	char qemu_sh[128]; /* sh named like qemu, for argument lists */
	char fake[96]; /* a tmpfs mounted here is a fake /proc */
	bool mounted, fake_mounted;
	dev_t store_dev;
	struct devset set; /* the storage's st_dev alone */
	pid_t kids[MAX_KIDS];
	int loopfd;
	int fds; /* open before the test */
	bool caps_dropped;
	struct __user_cap_data_struct caps[2]; /* before they were */
} fx;

static void restore_caps(void);

static void setup(void)
{
	char dir[96], sh[PATH_MAX];
	struct stat st;

	memset(&fx, 0, sizeof(fx));
	fx.loopfd = -1;
	fx.fds = count_fds();
	/* A mount of this namespace alone dies with the test, whatever happens. */
	cr_assert(!unshare(CLONE_NEWNS), "unshare: %s", strerror(errno));
	cr_assert(!mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));

	snprintf(fx.work, sizeof(fx.work), "/var/tmp/test_victims.XXXXXX");
	cr_assert_not_null(mkdtemp(fx.work));
	join(fx.store, sizeof(fx.store), fx.work, "store");
	cr_assert(!mkdir(fx.store, 0755));
	cr_assert(!mount("tmpfs", fx.store, "tmpfs", 0, "size=64m"),
		  "mount tmpfs: %s", strerror(errno));
	fx.mounted = true;
	cr_assert(!stat(fx.store, &st));
	fx.store_dev = st.st_dev;
	cr_assert(!devset_add(&fx.set, fx.store_dev));
	join(fx.disk, sizeof(fx.disk), fx.store, "disk.img");
	write_file(fx.disk, "vm disk\n");

	join(dir, sizeof(dir), fx.work, "bin");
	cr_assert(!mkdir(dir, 0755));
	join(fx.qemu, sizeof(fx.qemu), dir, QEMU);
	copy_file("/bin/sleep", fx.qemu, 0755);
	join(fx.bystander, sizeof(fx.bystander), dir, "bystander");
	copy_file("/bin/sleep", fx.bystander, 0755);
	join(dir, sizeof(dir), fx.work, "sh");
	cr_assert(!mkdir(dir, 0755));
	join(fx.qemu_sh, sizeof(fx.qemu_sh), dir, QEMU);
	cr_assert_not_null(realpath("/bin/sh", sh));
	copy_file(sh, fx.qemu_sh, 0755);
	cr_assert(stat(fx.qemu, &st) == 0 && st.st_dev != fx.store_dev);
}

static void teardown(void)
{
	restore_caps();
	for (unsigned int i = 0; i < MAX_KIDS; i++) {
		if (fx.kids[i] <= 0)
			continue;
		kill(fx.kids[i], SIGKILL);
		waitpid(fx.kids[i], NULL, 0);
		fx.kids[i] = 0;
	}
	if (fx.loopfd >= 0) {
		ioctl(fx.loopfd, LOOP_CLR_FD, 0);
		close(fx.loopfd);
	}
	if (fx.mounted)
		umount2(fx.store, MNT_DETACH);
	if (fx.fake_mounted)
		umount2(fx.fake, MNT_DETACH);
	if (fx.work[0])
		rm_tree(fx.work);
}

static void forget_kid(pid_t pid)
{
	for (unsigned int i = 0; i < MAX_KIDS; i++)
		if (fx.kids[i] == pid)
			fx.kids[i] = 0;
}

struct kid {
	const char *exe; /* absolute path */
	const char *const *args; /* after argv[0]; NULL: "1000" */
	const char *cwd; /* NULL: "/" */
	const char *hold; /* opened as fd 3 */
	const char *preload; /* LD_PRELOAD */
	bool stdin_pipe; /* a pipe nobody writes: sh's `read` blocks */
};

static bool maps_contain(pid_t pid, const char *needle)
{
	static char buf[1 << 20];
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, needle);
}

static char proc_state(pid_t pid)
{
	char path[64], buf[1024];
	const char *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return '?';
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return '?';
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] ? p[2] : '?';
}

/*
 * Until @pid waits in the program @exe: the exe link changes early in
 * execve(), before the arguments and the libraries are in place.
 */
static void wait_exec(pid_t pid, const char *exe, const char *map)
{
	char path[64], link[PATH_MAX];
	int status;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	for (int i = 0; i < 10000; i++) {
		cr_assert_eq(waitpid(pid, &status, WNOHANG), 0,
			     "%s exited early (status %#x)", exe, status);
		n = readlink(path, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = '\0';
			if (!strcmp(link, exe) && proc_state(pid) == 'S' &&
			    (!map || maps_contain(pid, map)))
				return;
		}
		usleep(1000);
	}
	cr_assert_fail("%s did not start", exe);
}

static pid_t spawn(const struct kid *k)
{
	static const char *const sleep_args[] = { "1000", NULL };
	const char *const *args = k->args ? k->args : sleep_args;
	char *argv[16], *envp[2] = { NULL, NULL };
	char env[PATH_MAX];
	unsigned int slot, n = 0;
	pid_t pid;

	for (slot = 0; slot < MAX_KIDS && fx.kids[slot]; slot++)
		;
	cr_assert_lt(slot, MAX_KIDS);
	argv[n++] = strrchr(k->exe, '/') + 1;
	while (*args && n < ARRAY_SIZE(argv) - 1)
		argv[n++] = (char *)*args++;
	argv[n] = NULL;
	if (k->preload) {
		snprintf(env, sizeof(env), "LD_PRELOAD=%s", k->preload);
		envp[0] = env;
	}

	pid = fork();
	cr_assert_geq(pid, 0);
	if (!pid) {
		int p[2];

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* Only what the test gives: inherited fds could be on the storage. */
		close_range(3, ~0U, 0);
		if (chdir(k->cwd ? k->cwd : "/"))
			_exit(126);
		if (k->hold && open(k->hold, O_RDONLY) != 3)
			_exit(126);
		if (k->stdin_pipe && (pipe(p) || dup2(p[0], 0) != 0))
			_exit(126);
		execve(k->exe, argv, envp);
		_exit(127);
	}
	fx.kids[slot] = pid;
	wait_exec(pid, k->exe, k->preload);
	return pid;
}

static struct victim_filter filter(char *const *patterns, unsigned int n)
{
	return (struct victim_filter){
		.patterns = patterns,
		.npatterns = n,
		.self = getpid(),
	};
}

/* Pools no other process of the host names, nor another test's qemu. */
#define POOL "iofence-unit-vms"
#define OTHER "iofence-unit-other"
#define UUID3 "0f0e0d0c-0b0a-0908-0706-050403020100"
#define UUID4 "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
/*
 * The rbd tests' VMs run sh under a name of this test process alone:
 * neither the real qemus of other tests nor the VMs of a test running
 * beside this one are read.
 */
static char rbd_qemu_name[VICTIM_EXE_MAX];
static char *rbd_qemu_pattern[] = { rbd_qemu_name };

/* An rbd disk and its format node, as libvirt writes them (-blockdev). */
#define LIBVIRT_RBD(pool, ns, image)                                         \
	"{\"driver\":\"rbd\",\"pool\":\"" pool "\"," ns "\"image\":\"" image \
	"\",\"server\":[{\"host\":\"127.0.0.1\",\"port\":\"6789\"}],"        \
	"\"user\":\"admin\",\"auth-client-required\":[\"cephx\",\"none\"],"  \
	"\"key-secret\":\"libvirt-1-storage-auth-secret0\","                 \
	"\"node-name\":\"libvirt-1-storage\",\"auto-read-only\":true,"       \
	"\"discard\":\"unmap\"}"
#define LIBVIRT_FORMAT                                             \
	"{\"node-name\":\"libvirt-1-format\",\"read-only\":false," \
	"\"driver\":\"raw\",\"file\":\"libvirt-1-storage\"}"

/* A copy of sh called @name, for command lines of our choosing. */
static void sh_named(char *path, size_t len, const char *name)
{
	char dir[96], sh[PATH_MAX];

	join(dir, sizeof(dir), fx.work, "rbd");
	cr_assert(!mkdir(dir, 0755) || errno == EEXIST);
	join(path, len, dir, name);
	cr_assert_not_null(realpath("/bin/sh", sh));
	copy_file(sh, path, 0755);
}

/* That copy of sh, into @path. */
static void rbd_qemu(char *path, size_t len)
{
	snprintf(rbd_qemu_name, sizeof(rbd_qemu_name), "qemu-system-unit-%d",
		 getpid());
	sh_named(path, len, rbd_qemu_name);
}

static struct victim_filter rbd_filter(char *const *patterns, unsigned int n,
				       const char *pool, const char *ns)
{
	struct victim_filter f = filter(patterns, n);

	f.rbd_pool = pool;
	f.rbd_ns = ns;
	return f;
}

static const struct victim *find(const struct victim *v, int n, pid_t pid)
{
	for (int i = 0; i < n; i++)
		if (v[i].pid == pid)
			return &v[i];
	return NULL;
}

static void expect_victim(const struct victim *v, int n, pid_t pid,
			  const char *why, const char *exe, const char *uuid)
{
	const struct victim *x = find(v, n, pid);

	cr_assert_not_null(x, "pid %d (%s) not found", pid, why);
	cr_assert_str_eq(x->why, why, "pid %d: %s", pid, x->why);
	cr_assert_str_eq(x->exe, exe, "pid %d: %s", pid, x->exe);
	cr_assert_str_eq(x->vm_uuid, uuid, "pid %d: '%s'", pid, x->vm_uuid);
	cr_assert_geq(x->pidfd, 0, "pid %d", pid);
}

static void expect_fds(int n)
{
	cr_assert_eq(count_fds(), fx.fds + n, "%d fds open, expected %d",
		     count_fds(), fx.fds + n);
}

/* ---------------------------------------------------------------- */
/* Device sets                                                      */

Test(devset, add_is_a_set)
{
	struct devset set = { .n = 0 };

	cr_assert(!devset_has(&set, makedev(8, 16)));
	cr_assert_eq(devset_add(&set, makedev(8, 16)), 0);
	cr_assert_eq(devset_add(&set, makedev(8, 16)), 0);
	cr_assert_eq(set.n, 1);
	cr_assert(devset_has(&set, makedev(8, 16)));
	cr_assert(!devset_has(&set, makedev(8, 17)));
	for (unsigned int i = 1; i < DEVSET_MAX; i++)
		cr_assert_eq(devset_add(&set, makedev(9, i)), 0);
	cr_assert_eq(set.n, DEVSET_MAX);
	cr_assert_eq(devset_add(&set, makedev(10, 0)), -ENOSPC);
	/* A member is no news, even to a full set. */
	cr_assert_eq(devset_add(&set, makedev(9, 5)), 0);
	cr_assert_eq(set.n, DEVSET_MAX);
	cr_assert(!devset_has(&set, makedev(10, 0)));
}

static char sysfs[64];

static void sysfs_setup(void)
{
	snprintf(sysfs, sizeof(sysfs), "/var/tmp/test_victims_sysfs.XXXXXX");
	cr_assert_not_null(mkdtemp(sysfs));
}

static void sysfs_teardown(void)
{
	rm_tree(sysfs);
}

/* Like sysfs: holders/<name> links to the holder, its number in class/block. */
static void sysfs_holder(const char *dev, const char *name, const char *num)
{
	char dir[256], path[PATH_MAX], target[256];

	snprintf(dir, sizeof(dir), "dev/block/%s/holders", dev);
	make_dirs(sysfs, dir);
	snprintf(path, sizeof(path), "%s/%s/%s", sysfs, dir, name);
	snprintf(target, sizeof(target), "../../../../class/block/%s", name);
	cr_assert(!symlink(target, path), "symlink %s: %s", path,
		  strerror(errno));
	if (!num)
		return;
	snprintf(dir, sizeof(dir), "class/block/%s", name);
	make_dirs(sysfs, dir);
	snprintf(path, sizeof(path), "%s/%s/dev", sysfs, dir);
	write_file(path, num);
}

TestSuite(devset_stack, .init = sysfs_setup, .fini = sysfs_teardown);

Test(devset_stack, holders_recursively)
{
	struct devset set = { .n = 0 };

	/* loop0 under dm-0 and dm-2, both under dm-1, which claims dm-0 back. */
	sysfs_holder("7:0", "dm-0", "253:0\n");
	sysfs_holder("7:0", "dm-2", "253:2\n");
	sysfs_holder("253:0", "dm-1", "253:1\n");
	sysfs_holder("253:2", "dm-1", NULL);
	sysfs_holder("253:1", "dm-0", NULL);
	cr_assert_eq(devset_add(&set, makedev(8, 0)), 0);

	cr_assert_eq(devset_add_stack(&set, makedev(7, 0), sysfs), 0);
	cr_assert_eq(set.n, 5);
	cr_assert(devset_has(&set, makedev(8, 0)));
	cr_assert(devset_has(&set, makedev(7, 0)));
	cr_assert(devset_has(&set, makedev(253, 0)));
	cr_assert(devset_has(&set, makedev(253, 1)));
	cr_assert(devset_has(&set, makedev(253, 2)));

	cr_assert_eq(devset_add_stack(&set, makedev(7, 0), sysfs), 0);
	cr_assert_eq(set.n, 5);
	/* From the middle of the stack, only what is above it. */
	set.n = 0;
	cr_assert_eq(devset_add_stack(&set, makedev(253, 2), sysfs), 0);
	cr_assert_eq(set.n, 3);
	cr_assert(!devset_has(&set, makedev(7, 0)));
}

Test(devset_stack, no_holders)
{
	struct devset set = { .n = 0 };

	cr_assert_eq(devset_add_stack(&set, makedev(7, 3), sysfs), 0);
	cr_assert_eq(set.n, 1);
	cr_assert(devset_has(&set, makedev(7, 3)));
	make_dirs(sysfs, "dev/block/7:4/holders");
	cr_assert_eq(devset_add_stack(&set, makedev(7, 4), sysfs), 0);
	cr_assert_eq(set.n, 2);
}

Test(devset_stack, holder_gone_meanwhile)
{
	struct devset set = { .n = 0 };

	sysfs_holder("7:0", "dm-0", NULL);
	sysfs_holder("7:0", "dm-3", "253:3\n");
	cr_assert_eq(devset_add_stack(&set, makedev(7, 0), sysfs), 0);
	cr_assert_eq(set.n, 2);
	cr_assert(devset_has(&set, makedev(253, 3)));
}

Test(devset_stack, bad_number)
{
	struct devset set = { .n = 0 };

	sysfs_holder("7:0", "dm-0", "253\n");
	cr_assert_eq(devset_add_stack(&set, makedev(7, 0), sysfs), -EINVAL);
}

Test(devset_stack, full)
{
	struct devset set = { .n = 0 };

	sysfs_holder("7:0", "dm-0", "253:0\n");
	sysfs_holder("7:0", "dm-2", "253:2\n");
	for (unsigned int i = 0; i < DEVSET_MAX - 2; i++)
		cr_assert_eq(devset_add(&set, makedev(9, i)), 0);
	cr_assert_eq(devset_add_stack(&set, makedev(7, 0), sysfs), -ENOSPC);
	cr_assert_eq(set.n, DEVSET_MAX);
	cr_assert_eq(devset_add_stack(&set, makedev(7, 1), sysfs), -ENOSPC);
}

/* ---------------------------------------------------------------- */
/* Finding victims                                                  */

TestSuite(victims, .init = setup, .fini = teardown, .timeout = 60);

Test(victims, each_kind_of_use)
{
	static const char *const sh_args[] = { "-c", "read x", "-uuid", UUID,
					       NULL };
	struct victim_filter f = filter(qemu_pattern, 1);
	char exe_on_store[128], lib[128];
	struct victim v[16];
	pid_t a, b, c, d, e, g, h;
	int n;

	join(exe_on_store, sizeof(exe_on_store), fx.store, QEMU);
	copy_file("/bin/sleep", exe_on_store, 0755);
	join(lib, sizeof(lib), fx.store, "libm.so.6");
	copy_file("/lib/x86_64-linux-gnu/libm.so.6", lib, 0755);

	a = spawn(&(struct kid){ .exe = fx.qemu, .hold = fx.disk });
	b = spawn(&(struct kid){ .exe = fx.bystander, .hold = fx.disk });
	c = spawn(&(struct kid){ .exe = fx.qemu, .cwd = fx.store });
	d = spawn(&(struct kid){ .exe = fx.qemu });
	e = spawn(&(struct kid){ .exe = exe_on_store });
	g = spawn(&(struct kid){ .exe = fx.qemu, .preload = lib });
	h = spawn(&(struct kid){ .exe = fx.qemu_sh,
				 .args = sh_args,
				 .hold = fx.disk,
				 .stdin_pipe = true });

	n = victims_scan(&fx.set, &f, "/proc", v, ARRAY_SIZE(v));
	cr_assert_eq(n, 5, "found %d", n);
	expect_victim(v, n, a, "fd", QEMU, "");
	expect_victim(v, n, c, "cwd", QEMU, "");
	expect_victim(v, n, e, "mapping", QEMU, "");
	expect_victim(v, n, g, "mapping", QEMU, "");
	expect_victim(v, n, h, "fd", QEMU, UUID);
	cr_assert_null(find(v, n, b));
	cr_assert_null(find(v, n, d));
	expect_fds(5);
	victims_release(v, (unsigned int)n);
	for (int i = 0; i < n; i++)
		cr_assert_eq(v[i].pidfd, -1);
	expect_fds(0);
}

static void loop_attach(const char *backing, dev_t *dev, char *node, size_t len)
{
	struct loop_config cfg = { .fd = 0 };
	struct stat st;
	int ctl, nr, fd = -1;

	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		cr_skip_test("no loop devices: %s", strerror(errno));
	cfg.fd = (unsigned int)open(backing, O_RDWR | O_CLOEXEC);
	cr_assert_geq((int)cfg.fd, 0);
	cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
	/* Another test may take the same free device first. */
	for (int i = 0; i < 100 && fd < 0; i++) {
		nr = ioctl(ctl, LOOP_CTL_GET_FREE);
		cr_assert_geq(nr, 0, "LOOP_CTL_GET_FREE: %s", strerror(errno));
		snprintf(node, len, "/dev/loop%d", nr);
		fd = open(node, O_RDWR | O_CLOEXEC);
		cr_assert_geq(fd, 0, "open %s: %s", node, strerror(errno));
		if (ioctl(fd, LOOP_CONFIGURE, &cfg)) {
			cr_assert_eq(errno, EBUSY, "LOOP_CONFIGURE: %s",
				     strerror(errno));
			close(fd);
			fd = -1;
		}
	}
	close((int)cfg.fd);
	close(ctl);
	cr_assert_geq(fd, 0);
	fx.loopfd = fd;
	cr_assert(!fstat(fd, &st));
	*dev = st.st_rdev;
}

Test(victims, block_device_holder)
{
	struct victim_filter f = filter(qemu_pattern, 1);
	char backing[128], node[64], other[128];
	struct devset set = { .n = 0 };
	struct victim v[4];
	pid_t a, b;
	dev_t dev;
	int n;

	join(backing, sizeof(backing), fx.work, "backing.img");
	write_file(backing, "");
	cr_assert(!truncate(backing, 1 << 20));
	loop_attach(backing, &dev, node, sizeof(node));
	/* Nothing is stacked on a fresh loop device. */
	cr_assert_eq(devset_add_stack(&set, dev, "/sys"), 0);
	cr_assert_eq(set.n, 1);
	cr_assert(devset_has(&set, dev));

	/* The node is on devtmpfs: only its rdev says which device it is. */
	join(other, sizeof(other), fx.work, "other");
	write_file(other, "");
	a = spawn(&(struct kid){ .exe = fx.qemu, .hold = node });
	b = spawn(&(struct kid){ .exe = fx.qemu, .hold = other });

	n = victims_scan(&set, &f, "/proc", v, ARRAY_SIZE(v));
	cr_assert_eq(n, 1, "found %d", n);
	expect_victim(v, n, a, "block device", QEMU, "");
	cr_assert_null(find(v, n, b));
	victims_release(v, (unsigned int)n);
	expect_fds(1); /* the loop device */
}

Test(victims, more_than_max)
{
	struct victim_filter f = filter(qemu_pattern, 1);
	struct victim v[3];
	pid_t kids[3];
	int n;

	for (unsigned int i = 0; i < ARRAY_SIZE(kids); i++)
		kids[i] =
			spawn(&(struct kid){ .exe = fx.qemu, .hold = fx.disk });

	memset(v, 0xa5, sizeof(v));
	n = victims_scan(&fx.set, &f, "/proc", v, 1);
	cr_assert_eq(n, 3);
	cr_assert_geq(v[0].pidfd, 0);
	cr_assert(v[0].pid == kids[0] || v[0].pid == kids[1] ||
		  v[0].pid == kids[2]);
	/* The others are counted, not written, and hold nothing open. */
	for (unsigned int i = 1; i < ARRAY_SIZE(v); i++)
		cr_assert_eq(v[i].pid, (pid_t)0xa5a5a5a5);
	expect_fds(1);
	victims_release(v, 1);
	expect_fds(0);

	n = victims_scan(&fx.set, &f, "/proc", NULL, 0);
	cr_assert_eq(n, 3);
	expect_fds(0);
}

Test(victims, kill_through_pidfd)
{
	struct victim_filter f = filter(qemu_pattern, 1);
	struct victim v[2];
	int n, status;
	pid_t a;

	a = spawn(&(struct kid){ .exe = fx.qemu, .hold = fx.disk });
	n = victims_scan(&fx.set, &f, "/proc", v, ARRAY_SIZE(v));
	cr_assert_eq(n, 1);
	cr_assert_eq(v[0].pid, a);

	cr_assert_eq(victim_kill(&v[0]), 0);
	cr_assert_eq(waitpid(a, &status, 0), a);
	forget_kid(a);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		  "status %#x", status);
	/* Gone and reaped: its pid may be anyone's now, the pidfd is not. */
	cr_assert_eq(victim_kill(&v[0]), -ESRCH);
	victims_release(v, 1);
	cr_assert_eq(victim_kill(&v[0]), -EBADF);
	expect_fds(0);
}

Test(victims, never_self_nor_pid_1)
{
	struct victim_filter f = filter(any_pattern, 1);
	struct victim v[4];
	pid_t a;
	int fd, n;

	/* This process uses the storage and matches "*": still not a victim. */
	fd = open(fx.disk, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	a = spawn(&(struct kid){ .exe = fx.bystander, .hold = fx.disk });

	n = victims_scan(&fx.set, &f, "/proc", v, ARRAY_SIZE(v));
	cr_assert_eq(n, 1, "found %d", n);
	expect_victim(v, n, a, "fd", "bystander", "");
	victims_release(v, 1);

	/* Whoever the filter names as self, this process is never taken. */
	f.self = 0;
	n = victims_scan(&fx.set, &f, "/proc", v, ARRAY_SIZE(v));
	cr_assert_eq(n, 1, "found %d", n);
	cr_assert_eq(v[0].pid, a);
	victims_release(v, 1);

	/* And the process the filter names is not either. */
	f.self = a;
	n = victims_scan(&fx.set, &f, "/proc", v, ARRAY_SIZE(v));
	cr_assert_eq(n, 0, "found %d", n);
	close(fd);
	expect_fds(0);
}

static unsigned int stat_flags(pid_t pid)
{
	char path[64], buf[1024];
	unsigned int flags = 0;
	const char *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (p)
		sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %u", &flags);
	return flags;
}

struct collect {
	struct victim *v;
	unsigned int max, n;
};

static void collect(struct victim *v, void *arg)
{
	struct collect *c = arg;

	if (c->n < c->max)
		c->v[c->n++] = *v;
	else
		close(v->pidfd);
}

/*
 * Every process of the host uses the root file system: with "*", all
 * are victims but PID 1, this process and the kernel threads.
 */
Test(victims, whole_host)
{
	struct victim_filter f = filter(any_pattern, 1);
	struct devset set = { .n = 0 };
	struct rlimit rl;
	struct victim *v;
	unsigned int max;
	struct collect c;
	struct stat st;
	int n, counted;
	pid_t d;

	cr_assert(!stat("/", &st));
	cr_assert(!devset_add(&set, st.st_dev));
	cr_assert(!getrlimit(RLIMIT_NOFILE, &rl));
	rl.rlim_cur = rl.rlim_max;
	cr_assert(!setrlimit(RLIMIT_NOFILE, &rl));
	d = spawn(&(struct kid){ .exe = fx.qemu });

	counted = victims_scan(&set, &f, "/proc", NULL, 0);
	cr_assert_gt(counted, 1);
	expect_fds(0);
	max = (unsigned int)counted + 256;
	cr_assert_lt(fx.fds + max + 16, rl.rlim_cur);
	v = calloc(max, sizeof(*v));
	cr_assert_not_null(v);
	/*
	 * No command lines: one of another test's processes in D state,
	 * holding its mmap lock, would hold this test too. Nor maps, but
	 * of the few with no fd, cwd or executable on the root file system.
	 */
	c = (struct collect){ .v = v, .max = max };
	n = victims_scan_each(&set, &f, "/proc", collect, NULL, &c, NULL);
	cr_assert_eq((unsigned int)n, c.n);
	cr_assert_gt(n, 1);
	cr_assert_leq((unsigned int)n, max);
	cr_assert_not_null(find(v, n, d));
	cr_assert_null(find(v, n, 1));
	cr_assert_null(find(v, n, getpid()));
	for (int i = 0; i < n; i++) {
		cr_assert_gt(v[i].pid, 1);
		cr_assert_not(stat_flags(v[i].pid) & PF_KTHREAD,
			      "kernel thread %d", v[i].pid);
		cr_assert_geq(v[i].pidfd, 0);
	}
	expect_fds(n);
	victims_release(v, (unsigned int)n);
	free(v);
	expect_fds(0);
}

Test(victims, vm_uuids)
{
	static const char *const vm1[] = { "-c", "read x", "-uuid", UUID,
					   NULL };
	static const char *const vm2[] = { "-c", "read x", "-uuid", UUID2,
					   NULL };
	struct victim_filter f = filter(qemu_pattern, 1);
	char uuids[4][37];
	int n;

	spawn(&(struct kid){ .exe = fx.qemu_sh,
			     .args = vm1,
			     .hold = fx.disk,
			     .stdin_pipe = true });
	/* A VM elsewhere, and a process on the storage that is no VM. */
	spawn(&(struct kid){
		.exe = fx.qemu_sh, .args = vm2, .stdin_pipe = true });
	spawn(&(struct kid){ .exe = fx.qemu, .hold = fx.disk });

	memset(uuids, 'x', sizeof(uuids));
	n = victims_vm_uuids(&fx.set, &f, "/proc", uuids, ARRAY_SIZE(uuids),
			     NULL);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(uuids[0], UUID);
	cr_assert_eq(uuids[1][0], 'x');

	memset(uuids, 'x', sizeof(uuids));
	n = victims_vm_uuids(&fx.set, &f, "/proc", uuids, 0, NULL);
	cr_assert_eq(n, 1);
	cr_assert_eq(uuids[0][0], 'x');
	expect_fds(0);
}

/* How the uuid is told apart from the rest of qemu's arguments. */
Test(victims, uuid_arguments)
{
	static const char *const two_dashes[] = { "-c", "read x", "--uuid",
						  UUID2, NULL };
	static const char *const later[] = { "-c",	    "read x",
					     "-name",	    "-uuid-not",
					     "-nodefaults", "-uuid",
					     UUID,	    NULL };
	static const char *const short_uuid[] = { "-c", "read x", "-uuid",
						  "12345678-1234-1234-1234",
						  NULL };
	static const char *const long_uuid[] = { "-c", "read x", "-uuid",
						 UUID "0", NULL };
	static const char *const bad_char[] = {
		"-c", "read x", "-uuid", "12345678-1234-1234-1234-123456789abg",
		NULL
	};
	static const char *const last[] = { "-c", "read x", "-uuid", NULL };
	static const char *const equals[] = { "-c", "read x", "-uuid=" UUID,
					      NULL };
	static const char *const *const cases[] = {
		two_dashes, later, short_uuid, long_uuid,
		bad_char,   last,  equals,
	};
	static const char *const want[] = { UUID2, UUID, "", "", "", "", "" };
	struct victim_filter f = filter(qemu_pattern, 1);
	pid_t pids[ARRAY_SIZE(cases)];
	struct victim v[ARRAY_SIZE(cases)];
	int n;

	for (unsigned int i = 0; i < ARRAY_SIZE(cases); i++)
		pids[i] = spawn(&(struct kid){ .exe = fx.qemu_sh,
					       .args = cases[i],
					       .hold = fx.disk,
					       .stdin_pipe = true });
	n = victims_scan(&fx.set, &f, "/proc", v, ARRAY_SIZE(v));
	cr_assert_eq(n, (int)ARRAY_SIZE(cases));
	for (unsigned int i = 0; i < ARRAY_SIZE(cases); i++)
		expect_victim(v, n, pids[i], "fd", QEMU, want[i]);
	victims_release(v, (unsigned int)n);
	expect_fds(0);
}

Test(victims, zombie_skipped)
{
	struct victim_filter f = filter(qemu_pattern, 1);
	struct victim v[2];
	siginfo_t si;
	pid_t a;
	int n;

	a = spawn(&(struct kid){ .exe = fx.qemu, .hold = fx.disk });
	cr_assert(!kill(a, SIGKILL));
	/* Dead but not reaped: its /proc entry stays, its files are gone. */
	cr_assert(!waitid(P_PID, (id_t)a, &si, WEXITED | WNOWAIT));
	n = victims_scan(&fx.set, &f, "/proc", v, ARRAY_SIZE(v));
	cr_assert_eq(n, 0);
	expect_fds(0);
}

/*
 * An rbd storage's victims are named by their command line: read as the
 * victim search will read it, from /proc of a real process.
 */
Test(victims, rbd_cmdline_of_a_process)
{
	static const char *const vm[] = {
		"-c",
		"read x",
		"-name",
		"guest=vm1,debug-threads=on",
		"-uuid",
		UUID,
		"-blockdev",
		"{\"driver\":\"rbd\",\"pool\":\"vms\",\"image\":"
		"\"disk0\",\"node-name\":\"libvirt-1-storage\"}",
		"-drive",
		"file=rbd:vms/t1/disk1:id=admin,format=raw",
		NULL
	};
	static const char *const other[] = { "-c", "read x", "-drive",
					     "file=/var/lib/vm.qcow2", NULL };
	char images[4][RBD_IMAGE_NAME_MAX], path[64];
	char *buf = malloc(RBD_CMDLINE_MAX);
	int dirfd, n;
	siginfo_t si;
	ssize_t len;
	bool cut;
	pid_t a;

	cr_assert_not_null(buf);
	a = spawn(&(struct kid){
		.exe = fx.qemu_sh, .args = vm, .stdin_pipe = true });
	snprintf(path, sizeof(path), "/proc/%d", a);
	dirfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(dirfd, 0);
	len = rbd_cmdline_read(dirfd, buf, RBD_CMDLINE_MAX, &cut);
	cr_assert_gt(len, 0);
	cr_assert(!cut);
	cr_assert_eq(buf[len - 1], '\0');
	n = rbd_cmdline_disks(buf, (size_t)len, cut, "vms", NULL, images, 4);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(images[0], "disk0");
	n = rbd_cmdline_disks(buf, (size_t)len, cut, "vms", "t1", images, 4);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(images[0], "disk1");
	cr_assert_eq(rbd_cmdline_disks(buf, (size_t)len, cut, "vm", NULL,
				       images, 4),
		     0);

	/* Read short: the disks past the end are not known absent. */
	len = rbd_cmdline_read(dirfd, buf, 60, &cut);
	cr_assert_eq(len, 60);
	cr_assert(cut);
	cr_assert_eq(rbd_cmdline_disks(buf, (size_t)len, cut, "vms", NULL,
				       images, 4),
		     -E2BIG);

	/* Dead, not reaped: no command line, no disk. */
	cr_assert(!kill(a, SIGKILL));
	cr_assert(!waitid(P_PID, (id_t)a, &si, WEXITED | WNOWAIT));
	len = rbd_cmdline_read(dirfd, buf, RBD_CMDLINE_MAX, &cut);
	cr_assert_eq(len, 0);
	cr_assert(!cut);
	cr_assert_eq(rbd_cmdline_disks(buf, 0, cut, "vms", NULL, images, 4), 0);
	close(dirfd);

	a = spawn(&(struct kid){
		.exe = fx.qemu_sh, .args = other, .stdin_pipe = true });
	snprintf(path, sizeof(path), "/proc/%d", a);
	dirfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(dirfd, 0);
	len = rbd_cmdline_read(dirfd, buf, RBD_CMDLINE_MAX, &cut);
	cr_assert_gt(len, 0);
	cr_assert_eq(rbd_cmdline_disks(buf, (size_t)len, cut, "vms", NULL,
				       images, 4),
		     0);
	close(dirfd);
	free(buf);
	expect_fds(0);
}

Test(victims, deleted_executable)
{
	static char *const exact[] = { QEMU };
	struct victim_filter f = filter(exact, 1);
	struct victim v[2];
	pid_t a;
	int n;

	a = spawn(&(struct kid){ .exe = fx.qemu, .hold = fx.disk });
	/* As after a package upgrade: the link reads "... (deleted)". */
	cr_assert(!unlink(fx.qemu));
	n = victims_scan(&fx.set, &f, "/proc", v, ARRAY_SIZE(v));
	cr_assert_eq(n, 1);
	expect_victim(v, n, a, "fd", QEMU, "");
	victims_release(v, 1);
	expect_fds(0);
}

Test(victims, filter_decides)
{
	static char *const several[] = { "nothing", "bystand?r" };
	struct victim_filter f = filter(NULL, 0);
	struct victim v[2];
	pid_t b;
	int n;

	spawn(&(struct kid){ .exe = fx.qemu, .hold = fx.disk });
	b = spawn(&(struct kid){ .exe = fx.bystander, .hold = fx.disk });
	n = victims_scan(&fx.set, &f, "/proc", v, ARRAY_SIZE(v));
	cr_assert_eq(n, 0);

	f = filter(several, ARRAY_SIZE(several));
	n = victims_scan(&fx.set, &f, "/proc", v, ARRAY_SIZE(v));
	cr_assert_eq(n, 1);
	expect_victim(v, n, b, "fd", "bystander", "");
	victims_release(v, 1);

	/* Nothing on an empty set. */
	f = filter(any_pattern, 1);
	n = victims_scan(&(struct devset){ .n = 0 }, &f, "/proc", v,
			 ARRAY_SIZE(v));
	cr_assert_eq(n, 0);
	expect_fds(0);
}

/* ---------------------------------------------------------------- */
/* Each victim at once, each unreadable process skipped             */

/* What the callbacks of victims_scan_each() saw, in their order. */
struct event {
	char kind; /* 'f': found(), 'n': named() */
	pid_t pid;
	const char *why;
	char uuid[37];
	pid_t pidfd_pid; /* whom the pidfd handed over is about; 0: none */
};

struct events {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct event ev[64];
	unsigned int n;
	bool done; /* the scan of a scan_job returned */
	/* Run in found(), as a fencing core's kill would be. */
	void (*hook)(const struct victim *v, void *arg);
	void *hook_arg;
};

#define EVENTS_INIT                              \
	{                                        \
		.mu = PTHREAD_MUTEX_INITIALIZER, \
		.cv = PTHREAD_COND_INITIALIZER,  \
	}

/* The pid a pidfd refers to, from its fdinfo; 0 when it says none. */
static pid_t pidfd_pid(int pidfd)
{
	char path[64], buf[1024];
	const char *p;
	ssize_t n;
	int fd;

	if (pidfd < 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strstr(buf, "\nPid:\t");
	return p ? (pid_t)atoi(p + 6) : 0;
}

static void on_found(struct victim *v, void *arg)
{
	struct events *e = arg;
	struct event ev = {
		.kind = 'f',
		.pid = v->pid,
		.why = v->why,
		.pidfd_pid = pidfd_pid(v->pidfd),
	};

	snprintf(ev.uuid, sizeof(ev.uuid), "%s", v->vm_uuid);
	if (e->hook)
		e->hook(v, e->hook_arg);
	if (v->pidfd >= 0)
		close(v->pidfd);
	pthread_mutex_lock(&e->mu);
	if (e->n < ARRAY_SIZE(e->ev))
		e->ev[e->n++] = ev;
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
}

static void on_named(pid_t pid, const char *vm_uuid, void *arg)
{
	struct events *e = arg;
	struct event ev = { .kind = 'n', .pid = pid };

	snprintf(ev.uuid, sizeof(ev.uuid), "%s", vm_uuid);
	pthread_mutex_lock(&e->mu);
	if (e->n < ARRAY_SIZE(e->ev))
		e->ev[e->n++] = ev;
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
}

/* The index of the event, or -1. The scan is over, or e->mu is held. */
static int event_at(const struct events *e, char kind, pid_t pid)
{
	for (unsigned int i = 0; i < e->n; i++)
		if (e->ev[i].kind == kind && e->ev[i].pid == pid)
			return (int)i;
	return -1;
}

static unsigned int events_of(const struct events *e, char kind)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < e->n; i++)
		n += e->ev[i].kind == kind;
	return n;
}

/* A victim found with the pidfd of its own process, not named yet. */
static void expect_found(const struct events *e, pid_t pid, const char *why)
{
	int i = event_at(e, 'f', pid);

	cr_assert_geq(i, 0, "pid %d (%s) not found", pid, why);
	cr_assert_str_eq(e->ev[i].why, why, "pid %d: %s", pid, e->ev[i].why);
	cr_assert_str_eq(e->ev[i].uuid, "", "pid %d", pid);
	cr_assert_eq(e->ev[i].pidfd_pid, pid, "pid %d: pidfd of %d", pid,
		     e->ev[i].pidfd_pid);
}

static void expect_named(const struct events *e, pid_t pid, const char *uuid)
{
	int i = event_at(e, 'n', pid);

	cr_assert_geq(i, 0, "pid %d not named", pid);
	cr_assert_str_eq(e->ev[i].uuid, uuid);
	cr_assert_gt(i, event_at(e, 'f', pid), "pid %d named before found",
		     pid);
}

static void expect_stats(const struct victim_scan_stats *st,
			 unsigned int examined, unsigned int skipped)
{
	cr_assert_eq(st->examined, examined, "examined %u", st->examined);
	cr_assert_eq(st->skipped, skipped, "skipped %u", st->skipped);
	cr_assert(st->complete);
	if (!skipped) {
		cr_assert_eq(st->last_err, 0, "last_err %d", st->last_err);
		cr_assert_eq(st->last_pid, 0);
	}
}

static void fake_init(void)
{
	setup();
	join(fx.fake, sizeof(fx.fake), fx.work, "proc");
	cr_assert(!mkdir(fx.fake, 0755));
	/* tmpfs lists a directory in creation order, or its reverse. */
	cr_assert(!mount("tmpfs", fx.fake, "tmpfs", 0, "size=16m"),
		  "mount tmpfs: %s", strerror(errno));
	fx.fake_mounted = true;
}

TestSuite(victims_fake, .init = fake_init, .fini = teardown, .timeout = 60);

/* A live pid for a fake /proc entry: pidfd_open() wants one. */
static pid_t hold_pid(void)
{
	unsigned int slot;
	pid_t pid;

	for (slot = 0; slot < MAX_KIDS && fx.kids[slot]; slot++)
		;
	cr_assert_lt(slot, MAX_KIDS);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (!pid) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	fx.kids[slot] = pid;
	return pid;
}

/* The pid of a process that has exited and been reaped. */
static pid_t gone_pid(void)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (!pid)
		_exit(0);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	return pid;
}

struct fake {
	pid_t pid;
	const char *exe; /* where exe links; NULL: fx.qemu */
	const char *fd; /* where fd/3 links, beside fd/0 on /dev/null */
	const char *cwd; /* NULL: "/" */
	bool maps_disk; /* maps fx.disk, beside the executable */
	const char *const *argv; /* cmdline; NULL: QEMU alone */
	unsigned int flags; /* of stat */
	unsigned long long start; /* of stat; 0: 4242 */
};

static void fake_path(char *buf, size_t len, pid_t pid, const char *name)
{
	int n = snprintf(buf, len, "%s/%d/%s", fx.fake, pid, name);

	cr_assert(n > 0 && (size_t)n < len);
}

static void fake_stat(pid_t pid, unsigned int flags, unsigned long long start)
{
	char path[PATH_MAX], buf[256];

	fake_path(path, sizeof(path), pid, "stat");
	/* A comm with parentheses, as a process may name itself. */
	snprintf(
		buf, sizeof(buf),
		"%d (qemu (x) 1) S 1 %d %d 0 -1 %u 10 0 0 0 5 3 0 0 20 0 1 0 %llu 1000 200\n",
		pid, pid, pid, flags, start ? start : 4242);
	write_file(path, buf);
}

static void maps_line(char *buf, size_t len, const char *path)
{
	struct stat st;
	size_t n = strlen(buf);

	cr_assert(!stat(path, &st));
	snprintf(buf + n, len - n,
		 "7f%06lx000-7f%06lx000 r--p 00000000 %02x:%02x %lu %s\n",
		 (unsigned long)n, (unsigned long)n + 1, major(st.st_dev),
		 minor(st.st_dev), (unsigned long)st.st_ino, path);
}

/* /proc/<pid> as procfs shows it, for what the scan reads. */
static void fake_proc(const struct fake *p)
{
	static const char *const no_args[] = { QEMU, NULL };
	char dir[PATH_MAX], path[PATH_MAX], maps[1024] = "";
	int fd;

	snprintf(dir, sizeof(dir), "%s/%d", fx.fake, p->pid);
	cr_assert(!mkdir(dir, 0755), "mkdir %s: %s", dir, strerror(errno));
	fake_path(path, sizeof(path), p->pid, "exe");
	cr_assert(!symlink(p->exe ? p->exe : fx.qemu, path));
	fake_stat(p->pid, p->flags, p->start);
	fake_path(path, sizeof(path), p->pid, "fd");
	cr_assert(!mkdir(path, 0755));
	fake_path(path, sizeof(path), p->pid, "fd/0");
	cr_assert(!symlink("/dev/null", path));
	if (p->fd) {
		fake_path(path, sizeof(path), p->pid, "fd/3");
		cr_assert(!symlink(p->fd, path));
	}
	fake_path(path, sizeof(path), p->pid, "cwd");
	cr_assert(!symlink(p->cwd ? p->cwd : "/", path));
	maps_line(maps, sizeof(maps), fx.qemu);
	if (p->maps_disk)
		maps_line(maps, sizeof(maps), fx.disk);
	fake_path(path, sizeof(path), p->pid, "maps");
	write_file(path, maps);
	fake_path(path, sizeof(path), p->pid, "cmdline");
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0);
	for (const char *const *a = p->argv ? p->argv : no_args; *a; a++)
		cr_assert_eq(write(fd, *a, strlen(*a) + 1),
			     (ssize_t)strlen(*a) + 1);
	close(fd);
}

/*
 * The entry @name of fake process @pid becomes a FIFO nobody writes: its
 * open() waits, as a read of a process whose mmap lock is held by a
 * thread in D state does. Its path goes to @path.
 */
static void fake_hang(pid_t pid, const char *name, char *path, size_t len)
{
	fake_path(path, len, pid, name);
	cr_assert(!unlink(path));
	cr_assert(!mkfifo(path, 0644));
}

static void fake_chmod(pid_t pid, const char *name, mode_t mode)
{
	char path[PATH_MAX];

	fake_path(path, sizeof(path), pid, name);
	cr_assert(!chmod(path, mode));
}

/* Where fake process @pid comes in the listing of the fake /proc. */
static int fake_pos(pid_t pid)
{
	char name[16];
	struct dirent *de;
	DIR *dir;
	int i = 0, pos = -1;

	snprintf(name, sizeof(name), "%d", pid);
	dir = opendir(fx.fake);
	cr_assert_not_null(dir);
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		if (!strcmp(de->d_name, name))
			pos = i;
		i++;
	}
	closedir(dir);
	cr_assert_geq(pos, 0);
	return pos;
}

struct scan_job {
	pthread_t thread;
	struct victim_filter f;
	struct events *e;
	struct victim_scan_stats st;
	int ret;
};

/* The scan as the daemon runs it: in a worker thread that may block. */
static void *scan_thread(void *arg)
{
	struct scan_job *j = arg;

	j->ret = victims_scan_each(&fx.set, &j->f, fx.fake, on_found, on_named,
				   j->e, &j->st);
	pthread_mutex_lock(&j->e->mu);
	j->e->done = true;
	pthread_cond_broadcast(&j->e->cv);
	pthread_mutex_unlock(&j->e->mu);
	return NULL;
}

/* Until the event (@kind, @pid) or the end of the scan, at most @ms. */
static bool wait_event(struct events *e, char kind, pid_t pid, int ms)
{
	struct timespec t;
	bool seen;

	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&e->mu);
	while (!(seen = event_at(e, kind, pid) >= 0) && !e->done)
		if (pthread_cond_timedwait(&e->cv, &e->mu, &t))
			break;
	pthread_mutex_unlock(&e->mu);
	return seen;
}

static bool wait_found(struct events *e, pid_t pid, int ms)
{
	return wait_event(e, 'f', pid, ms);
}

/* Writers come and go on the hung FIFOs until the scan ends, at most @ms. */
static bool release(struct events *e, char (*fifos)[PATH_MAX], unsigned int n,
		    int ms)
{
	bool done = false;

	for (int t = 0; t < ms && !done; t++) {
		for (unsigned int i = 0; i < n; i++) {
			int fd = open(fifos[i],
				      O_WRONLY | O_NONBLOCK | O_CLOEXEC);

			if (fd >= 0)
				close(fd);
		}
		usleep(1000);
		pthread_mutex_lock(&e->mu);
		done = e->done;
		pthread_mutex_unlock(&e->mu);
	}
	return done;
}

/* Until the scan of @e returned, at most @ms. */
static bool wait_done(struct events *e, int ms)
{
	bool done;

	wait_event(e, 'f', 0, ms);
	pthread_mutex_lock(&e->mu);
	done = e->done;
	pthread_mutex_unlock(&e->mu);
	return done;
}

static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static unsigned int probes_stuck(void)
{
	struct probe_stats ps;

	probe_stats(&ps);
	return ps.stuck;
}

/*
 * Writers come and go on the hung FIFOs until no probe is stuck any more
 * (every helper let go of what it held), at most about @ms.
 */
static bool release_stuck(char (*fifos)[PATH_MAX], unsigned int n, int ms)
{
	for (int t = 0; t < ms; t++) {
		for (unsigned int i = 0; i < n; i++) {
			int fd = open(fifos[i],
				      O_WRONLY | O_NONBLOCK | O_CLOEXEC);

			if (fd >= 0)
				close(fd);
		}
		if (!probes_stuck())
			return true;
		usleep(1000);
	}
	return false;
}

/*
 * The fencing core kills a victim when found() reports it: that must not
 * wait for the maps of another process, which a thread in D state on the
 * lost storage can hold for as long as the storage is gone. Nor may the
 * rest of the search: a candidate whose maps hang is given up on after
 * its deadline and counted, and the ones after it are still read. Two
 * such candidates are listed first and last, so that one comes before
 * the victims whichever way the directory is listed.
 */
Test(victims_fake, hung_maps_given_up)
{
	static const char *const vm[] = { QEMU,	   "-name", "vm1",
					  "-uuid", UUID,    NULL };
	struct events e = EVENTS_INIT;
	struct scan_job j = { .f = filter(qemu_pattern, 1), .e = &e };
	char fifos[2][PATH_MAX];
	pid_t h1, a, v, m, h2;
	bool early, ended, released;
	long long t0, took;
	int first;

	h1 = hold_pid();
	a = hold_pid();
	v = hold_pid();
	m = hold_pid();
	h2 = hold_pid();
	fake_proc(&(struct fake){ .pid = h1 });
	fake_hang(h1, "maps", fifos[0], sizeof(fifos[0]));
	fake_proc(&(struct fake){ .pid = a, .fd = fx.disk, .argv = vm });
	fake_proc(&(struct fake){ .pid = v, .cwd = fx.store });
	fake_proc(&(struct fake){ .pid = m, .maps_disk = true });
	fake_proc(&(struct fake){ .pid = h2 });
	fake_hang(h2, "maps", fifos[1], sizeof(fifos[1]));
	first = fake_pos(h1) < fake_pos(h2) ? fake_pos(h1) : fake_pos(h2);
	cr_assert(first < fake_pos(a) && first < fake_pos(v) &&
		  first < fake_pos(m));

	t0 = now_ms();
	cr_assert(!pthread_create(&j.thread, NULL, scan_thread, &j));
	early = wait_found(&e, a, 10000) && wait_found(&e, v, 10000);
	/* Nothing is released: the scan ends on its own. */
	ended = wait_done(&e, 10000);
	took = now_ms() - t0;
	cr_assert(early, "found() waited for another candidate's maps");
	cr_assert(ended, "the scan waited on the hung maps");
	cr_assert(!pthread_join(j.thread, NULL));
	cr_assert_geq(took, PROBE_DEADLINE_MS, "%lld ms", took);
	cr_assert_eq(probes_stuck(), 2);
	released = release_stuck(fifos, 2, 20000);
	cr_assert(released, "the hung reads did not end after the release");

	cr_assert_eq(j.ret, 3, "found %d", j.ret);
	cr_assert_eq(events_of(&e, 'f'), 3);
	expect_found(&e, a, "fd");
	expect_found(&e, v, "cwd");
	expect_found(&e, m, "mapping");
	cr_assert_eq(event_at(&e, 'f', h1), -1);
	cr_assert_eq(event_at(&e, 'f', h2), -1);
	/* Only a's command line names a VM. */
	cr_assert_eq(events_of(&e, 'n'), 1);
	expect_named(&e, a, UUID);
	cr_assert_gt(event_at(&e, 'n', a), event_at(&e, 'f', m));
	expect_stats(&j.st, 5, 2);
	cr_assert_eq(j.st.last_err, -ETIMEDOUT, "%d", j.st.last_err);
	cr_assert(j.st.last_pid == h1 || j.st.last_pid == h2);
	/* What the given-up reads held, they closed once let go. */
	expect_fds(0);
}

/*
 * A candidate whose first entries hang (an exec stuck on a dead mount
 * holds what readlink of its exe waits for; here its stat, which pass 1
 * reads) is given up on and counted; the victims after it still die.
 * While its reads are stuck, later searches do not read it again: no new
 * timeout, no new helper stuck, at no cost. Once it answers, it is
 * looked at like any other.
 */
Test(victims_fake, hung_first_pass_given_up)
{
	struct victim_filter f = filter(qemu_pattern, 1);
	struct events e = EVENTS_INIT, e2 = EVENTS_INIT, e3 = EVENTS_INIT;
	struct scan_job j = { .f = f, .e = &e };
	struct victim_scan_stats st;
	struct probe_stats ps1, ps2;
	char fifos[2][PATH_MAX];
	pid_t u1, a, v, nb, u2;
	long long t0, took;
	int first, n;

	u1 = hold_pid();
	a = hold_pid();
	v = hold_pid();
	nb = hold_pid();
	u2 = hold_pid();
	fake_proc(&(struct fake){ .pid = u1, .fd = fx.disk });
	fake_hang(u1, "stat", fifos[0], sizeof(fifos[0]));
	fake_proc(&(struct fake){ .pid = a, .fd = fx.disk });
	fake_proc(&(struct fake){ .pid = v, .cwd = fx.store });
	fake_proc(&(struct fake){
		.pid = nb, .exe = fx.bystander, .fd = fx.disk });
	fake_proc(&(struct fake){ .pid = u2, .cwd = fx.store });
	fake_hang(u2, "stat", fifos[1], sizeof(fifos[1]));
	first = fake_pos(u1) < fake_pos(u2) ? fake_pos(u1) : fake_pos(u2);
	cr_assert(first < fake_pos(a) && first < fake_pos(v));

	cr_assert(!pthread_create(&j.thread, NULL, scan_thread, &j));
	cr_assert(wait_found(&e, a, 10000) && wait_found(&e, v, 10000),
		  "the victims waited for a hung process");
	cr_assert(wait_done(&e, 10000), "the scan waited on a hung process");
	cr_assert(!pthread_join(j.thread, NULL));
	cr_assert_eq(j.ret, 2, "found %d", j.ret);
	expect_found(&e, a, "fd");
	expect_found(&e, v, "cwd");
	cr_assert_eq(event_at(&e, 'f', u1), -1);
	cr_assert_eq(event_at(&e, 'f', u2), -1);
	cr_assert_eq(event_at(&e, 'f', nb), -1);
	expect_stats(&j.st, 2, 2);
	cr_assert_eq(j.st.last_err, -ETIMEDOUT, "%d", j.st.last_err);
	cr_assert(j.st.last_pid == u1 || j.st.last_pid == u2);
	cr_assert_eq(probes_stuck(), 2);

	/* Still stuck: skipped at once, nothing new waits or piles up. */
	probe_stats(&ps1);
	t0 = now_ms();
	n = victims_scan_each(&fx.set, &f, fx.fake, on_found, on_named, &e2,
			      &st);
	took = now_ms() - t0;
	probe_stats(&ps2);
	cr_assert_eq(n, 2, "found %d", n);
	expect_stats(&st, 2, 2);
	cr_assert_eq(ps2.timeouts, ps1.timeouts);
	cr_assert_eq(ps2.stuck, 2);
	cr_assert_eq(ps2.helpers, ps1.helpers);
	cr_assert_lt(took, PROBE_DEADLINE_MS, "%lld ms", took);

	/* They answer again: victims like the others. */
	cr_assert(release_stuck(fifos, 2, 20000));
	cr_assert(!unlink(fifos[0]) && !unlink(fifos[1]));
	fake_stat(u1, 0, 0);
	fake_stat(u2, 0, 0);
	n = victims_scan_each(&fx.set, &f, fx.fake, on_found, NULL, &e3, &st);
	cr_assert_eq(n, 4, "found %d", n);
	expect_found(&e3, u1, "fd");
	expect_found(&e3, u2, "cwd");
	expect_stats(&st, 4, 0);
	expect_fds(0);
}

/*
 * A victim stuck on the lost storage itself, whose command line waits
 * for its mmap lock: it is found by its fd and reported (killed) at once,
 * and the search still ends, the victim unnamed. The census, which would
 * need its name, counts it as a skip without waiting again.
 */
Test(victims_fake, hung_victim_reported_unnamed)
{
	static const char *const vm[] = { QEMU, "-uuid", UUID, NULL };
	struct victim_filter f = filter(qemu_pattern, 1);
	struct events e = EVENTS_INIT;
	struct scan_job j = { .f = f, .e = &e };
	struct victim_scan_stats st;
	struct probe_stats ps1, ps2;
	char fifo[1][PATH_MAX], uuids[4][37];
	pid_t h, b;
	int n;

	h = hold_pid();
	b = hold_pid();
	fake_proc(&(struct fake){ .pid = h, .fd = fx.disk });
	fake_hang(h, "cmdline", fifo[0], sizeof(fifo[0]));
	fake_proc(&(struct fake){ .pid = b, .fd = fx.disk, .argv = vm });

	cr_assert(!pthread_create(&j.thread, NULL, scan_thread, &j));
	cr_assert(wait_done(&e, 10000), "the scan waited on a hung cmdline");
	cr_assert(!pthread_join(j.thread, NULL));
	cr_assert_eq(j.ret, 2, "found %d", j.ret);
	expect_found(&e, h, "fd");
	expect_found(&e, b, "fd");
	cr_assert_eq(events_of(&e, 'n'), 1);
	expect_named(&e, b, UUID);
	/* A victim's name is not what makes it one: no skip. */
	expect_stats(&j.st, 2, 0);
	cr_assert_eq(probes_stuck(), 1);

	probe_stats(&ps1);
	memset(uuids, 'x', sizeof(uuids));
	n = victims_vm_uuids(&fx.set, &f, fx.fake, uuids, ARRAY_SIZE(uuids),
			     &st);
	probe_stats(&ps2);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(uuids[0], UUID);
	expect_stats(&st, 2, 1);
	cr_assert_eq(st.last_err, -ETIMEDOUT);
	cr_assert_eq(st.last_pid, h);
	cr_assert_eq(ps2.timeouts, ps1.timeouts);

	cr_assert(release_stuck(fifo, 1, 20000));
	expect_fds(0);
}

/* ---------------------------------------------------------------- */
/* Probes: reads on helpers, with a deadline                        */

struct tprobe {
	struct probe p; /* first: a tprobe is its probe */
	int fd; /* read before returning; -1: none */
	pid_t tid; /* the thread it ran on */
	int policy;
	bool *dropped;
};

static void tprobe_run(struct probe *p)
{
	struct tprobe *t = (struct tprobe *)p;
	char c;

	t->tid = (pid_t)syscall(SYS_gettid);
	t->policy = sched_getscheduler(0);
	probe_note(p, "before");
	if (t->fd >= 0 && read(t->fd, &c, 1) < 0)
		t->tid = -1;
}

static void tprobe_drop(struct probe *p)
{
	struct tprobe *t = (struct tprobe *)p;

	__atomic_store_n(t->dropped, true, __ATOMIC_RELEASE);
	free(t);
}

static struct tprobe *tprobe_new(int fd, pid_t pid, bool *dropped)
{
	struct tprobe *t = calloc(1, sizeof(*t));

	cr_assert_not_null(t);
	t->p.run = tprobe_run;
	t->p.drop = tprobe_drop;
	t->p.pid = pid;
	t->p.kind = PROBE_MM;
	t->fd = fd;
	t->dropped = dropped;
	return t;
}

TestSuite(probe, .timeout = 60);

Test(probe, runs_on_a_helper_reused)
{
	struct probe_stats ps;
	struct tprobe *t = tprobe_new(-1, 1, NULL);
	pid_t me = (pid_t)syscall(SYS_gettid), first;

	cr_assert_eq(probe_run(&t->p, PROBE_DEADLINE_MS, NULL, 0), 0);
	cr_assert_gt(t->tid, 0);
	cr_assert_neq(t->tid, me);
	first = t->tid;
	for (int i = 0; i < 100; i++) {
		t->tid = 0;
		cr_assert_eq(probe_run(&t->p, PROBE_DEADLINE_MS, NULL, 0), 0);
		cr_assert_eq(t->tid, first);
	}
	probe_stats(&ps);
	cr_assert_eq(ps.helpers, 1);
	cr_assert_eq(ps.stuck, 0);
	cr_assert_eq(ps.timeouts, 0);
	free(t);
}

/* A helper runs at the class of the search that hands it the reads. */
Test(probe, at_the_callers_class)
{
	struct sched_param fifo = { .sched_priority = 1 }, other = { 0 };
	struct tprobe *t = tprobe_new(-1, 1, NULL);

	cr_assert_eq(probe_run(&t->p, PROBE_DEADLINE_MS, NULL, 0), 0);
	cr_assert_eq(t->policy, SCHED_OTHER);
	if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &fifo)) {
		free(t);
		cr_skip_test("SCHED_FIFO refused here");
	}
	cr_assert_eq(probe_run(&t->p, PROBE_DEADLINE_MS, NULL, 0), 0);
	cr_assert_eq(t->policy, SCHED_FIFO);
	cr_assert(!pthread_setschedparam(pthread_self(), SCHED_OTHER, &other));
	cr_assert_eq(probe_run(&t->p, PROBE_DEADLINE_MS, NULL, 0), 0);
	cr_assert_eq(t->policy, SCHED_OTHER);
	free(t);
}

Test(probe, given_up_then_dropped)
{
	bool dropped = false;
	char note[PROBE_NOTE_MAX] = "x";
	struct tprobe *t;
	long long t0, took;
	int pfd[2];

	cr_assert(!pipe(pfd));
	t = tprobe_new(pfd[0], 4242, &dropped);
	t0 = now_ms();
	cr_assert_eq(probe_run(&t->p, PROBE_DEADLINE_MS, note, sizeof(note)),
		     -ETIMEDOUT);
	took = now_ms() - t0;
	cr_assert_geq(took, PROBE_DEADLINE_MS, "%lld ms", took);
	cr_assert_lt(took, PROBE_DEADLINE_MS + 5000, "%lld ms", took);
	cr_assert_str_eq(note, "before");
	note[0] = '\0';
	cr_assert(probe_stuck(4242, PROBE_MM, note, sizeof(note)));
	cr_assert_str_eq(note, "before");
	cr_assert(!probe_stuck(4242, PROBE_PROC, NULL, 0));
	cr_assert(!probe_stuck(4243, PROBE_MM, NULL, 0));
	cr_assert_eq(probes_stuck(), 1);
	cr_assert(!__atomic_load_n(&dropped, __ATOMIC_ACQUIRE));

	/* The hang clears: the helper frees the probe, and is free again. */
	cr_assert_eq(write(pfd[1], "x", 1), 1);
	for (int i = 0; i < 5000 && probes_stuck(); i++)
		usleep(1000);
	cr_assert_eq(probes_stuck(), 0);
	cr_assert(__atomic_load_n(&dropped, __ATOMIC_ACQUIRE));
	cr_assert(!probe_stuck(4242, PROBE_MM, NULL, 0));
	t = tprobe_new(-1, 1, NULL);
	cr_assert_eq(probe_run(&t->p, PROBE_DEADLINE_MS, NULL, 0), 0);
	free(t);
	close(pfd[0]);
	close(pfd[1]);
}

struct blocker {
	pthread_t thread;
	int pfd[2];
	bool dropped;
	int ret;
};

static void *block_one(void *arg)
{
	struct blocker *b = arg;
	struct tprobe *t = tprobe_new(b->pfd[0], 1, &b->dropped);

	b->ret = probe_run(&t->p, PROBE_DEADLINE_MS, NULL, 0);
	return NULL;
}

/*
 * Helpers stuck in the kernel are bounded: with every one of them stuck,
 * the reads run on the caller, as every search did before helpers.
 */
Test(probe, bounded)
{
	static struct blocker b[PROBE_HELPERS_MAX];
	struct probe_stats ps;
	struct tprobe *t;
	pid_t me = (pid_t)syscall(SYS_gettid);

	for (unsigned int i = 0; i < PROBE_HELPERS_MAX; i++) {
		cr_assert(!pipe(b[i].pfd));
		cr_assert(
			!pthread_create(&b[i].thread, NULL, block_one, &b[i]));
	}
	for (unsigned int i = 0; i < PROBE_HELPERS_MAX; i++) {
		cr_assert(!pthread_join(b[i].thread, NULL));
		cr_assert_eq(b[i].ret, -ETIMEDOUT, "%u: %d", i, b[i].ret);
	}
	probe_stats(&ps);
	cr_assert_eq(ps.helpers, PROBE_HELPERS_MAX);
	cr_assert_eq(ps.stuck, PROBE_HELPERS_MAX);
	t = tprobe_new(-1, 1, NULL);
	cr_assert_eq(probe_run(&t->p, PROBE_DEADLINE_MS, NULL, 0), 0);
	cr_assert_eq(t->tid, me);
	probe_stats(&ps);
	cr_assert_eq(ps.inline_runs, 1);
	cr_assert_eq(ps.helpers, PROBE_HELPERS_MAX);

	for (unsigned int i = 0; i < PROBE_HELPERS_MAX; i++)
		cr_assert_eq(write(b[i].pfd[1], "x", 1), 1);
	for (int i = 0; i < 5000 && probes_stuck(); i++)
		usleep(1000);
	cr_assert_eq(probes_stuck(), 0);
	for (unsigned int i = 0; i < PROBE_HELPERS_MAX; i++)
		cr_assert(__atomic_load_n(&b[i].dropped, __ATOMIC_ACQUIRE));
	/* Free again: on a helper, not inline. */
	t->tid = 0;
	cr_assert_eq(probe_run(&t->p, PROBE_DEADLINE_MS, NULL, 0), 0);
	cr_assert_neq(t->tid, me);
	free(t);
	for (unsigned int i = 0; i < PROBE_HELPERS_MAX; i++) {
		close(b[i].pfd[0]);
		close(b[i].pfd[1]);
	}
}

/* Root reads mode-000 files only through these two capabilities. */
static void drop_dac(void)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct d[2];

	cr_assert(!syscall(SYS_capget, &h, fx.caps), "capget: %s",
		  strerror(errno));
	memcpy(d, fx.caps, sizeof(d));
	d[0].effective &=
		~((1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH));
	cr_assert(!syscall(SYS_capset, &h, d), "capset: %s", strerror(errno));
	fx.caps_dropped = true;
}

static void restore_caps(void)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};

	if (!fx.caps_dropped)
		return;
	syscall(SYS_capset, &h, fx.caps);
	fx.caps_dropped = false;
}

/*
 * One process that cannot be read must not spare the others: it is
 * skipped and counted, and the scan goes on. A process seen to use the
 * storage is a victim even when another of its entries cannot be read.
 */
Test(victims_fake, unreadable_skipped_and_counted)
{
	static const char *const vm1[] = { QEMU, "-uuid", UUID, NULL };
	static const char *const vm2[] = { QEMU, "-uuid", UUID2, NULL };
	struct victim_filter f = filter(qemu_pattern, 1);
	struct events e = EVENTS_INIT, e2 = EVENTS_INIT;
	pid_t u1, u2, u3, u4, u5, a, g, k, nb, x;
	struct victim_scan_stats st;
	char path[PATH_MAX], uuids[4][37];
	int n;

	u1 = hold_pid(); /* fd/ unreadable, nothing else on the storage */
	u2 = hold_pid(); /* fd/ unreadable, cwd on the storage */
	u3 = hold_pid(); /* stat unreadable, an fd on the storage */
	u4 = hold_pid(); /* maps unreadable */
	u5 = hold_pid(); /* fd/ unreadable, a mapping on the storage */
	a = hold_pid(); /* an fd on the storage */
	g = gone_pid(); /* exited before its pidfd could be opened */
	k = hold_pid(); /* a kernel thread */
	nb = hold_pid(); /* another program */
	x = hold_pid(); /* the filter's self */
	fake_proc(&(struct fake){ .pid = u1 });
	fake_chmod(u1, "fd", 0);
	fake_proc(&(struct fake){ .pid = u2, .cwd = fx.store, .argv = vm2 });
	fake_chmod(u2, "fd", 0);
	fake_chmod(u2, "cmdline", 0);
	fake_proc(&(struct fake){ .pid = u3, .fd = fx.disk });
	fake_chmod(u3, "stat", 0);
	fake_proc(&(struct fake){ .pid = u4 });
	fake_chmod(u4, "maps", 0);
	fake_proc(&(struct fake){ .pid = u5, .maps_disk = true });
	fake_chmod(u5, "fd", 0);
	fake_proc(&(struct fake){ .pid = a, .fd = fx.disk, .argv = vm1 });
	fake_proc(&(struct fake){ .pid = g, .fd = fx.disk });
	fake_proc(
		&(struct fake){ .pid = k, .fd = fx.disk, .flags = PF_KTHREAD });
	fake_proc(&(struct fake){
		.pid = nb, .exe = fx.bystander, .fd = fx.disk });
	fake_proc(&(struct fake){ .pid = x, .fd = fx.disk });
	fake_proc(&(struct fake){ .pid = 1, .fd = fx.disk });
	fake_proc(&(struct fake){ .pid = getpid(), .fd = fx.disk });
	f.self = x;

	drop_dac();
	fake_path(path, sizeof(path), u1, "fd");
	cr_assert_eq(open(path, O_RDONLY | O_DIRECTORY), -1);
	cr_assert_eq(errno, EACCES, "%s", strerror(errno));

	memset(&st, 0xa5, sizeof(st));
	n = victims_scan_each(&fx.set, &f, fx.fake, on_found, on_named, &e,
			      &st);
	cr_assert_eq(n, 3, "found %d", n);
	cr_assert_eq(events_of(&e, 'f'), 3);
	expect_found(&e, u2, "cwd");
	expect_found(&e, u5, "mapping");
	expect_found(&e, a, "fd");
	/* u2's command line cannot be read: unnamed, yet no skip. */
	cr_assert_eq(events_of(&e, 'n'), 1);
	expect_named(&e, a, UUID);
	/* u1..u5, a, g and k; never nb (by name), x, 1 nor this process. */
	expect_stats(&st, 8, 3);
	cr_assert_eq(st.last_err, -EACCES, "%d", st.last_err);
	cr_assert(st.last_pid == u1 || st.last_pid == u3 || st.last_pid == u4,
		  "last_pid %d", st.last_pid);
	expect_fds(0);

	/* The census skips them too, and a VM it cannot name. */
	memset(&st, 0xa5, sizeof(st));
	memset(uuids, 'x', sizeof(uuids));
	n = victims_vm_uuids(&fx.set, &f, fx.fake, uuids, ARRAY_SIZE(uuids),
			     &st);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(uuids[0], UUID);
	cr_assert_eq(uuids[1][0], 'x');
	expect_stats(&st, 8, 4);
	cr_assert_eq(st.last_err, -EACCES);
	expect_fds(0);

	/* Readable again but for u4's maps: one skip, and u3 is a victim. */
	fake_chmod(u1, "fd", 0755);
	fake_chmod(u3, "stat", 0644);
	memset(&st, 0xa5, sizeof(st));
	n = victims_scan_each(&fx.set, &f, fx.fake, on_found, NULL, &e2, &st);
	cr_assert_eq(n, 4, "found %d", n);
	expect_found(&e2, u2, "cwd");
	expect_found(&e2, u3, "fd");
	expect_found(&e2, u5, "mapping");
	expect_found(&e2, a, "fd");
	cr_assert_eq(events_of(&e2, 'n'), 0);
	expect_stats(&st, 8, 1);
	cr_assert_eq(st.last_err, -EACCES);
	cr_assert_eq(st.last_pid, u4);
	restore_caps();
	expect_fds(0);
}

/*
 * An rbd search over every kind of process: by command line alone (the
 * device set is not looked at), and a command line that cannot be read
 * whole is a skip unless what was read names a disk of the pool.
 */
Test(victims_fake, rbd_search)
{
	static const char *const drive[] = {
		QEMU,
		"-uuid",
		UUID,
		"-drive",
		"file=rbd:vms/d1:id=admin,format=raw,if=none,id=drive0",
		NULL
	};
	static const char *const nested[] = {
		QEMU, "-blockdev",
		"{\"driver\":\"raw\",\"node-name\":\"fmt\",\"file\":"
		"{\"driver\":\"rbd\",\"pool\":\"vms\",\"image\":\"d2\"}}",
		NULL
	};
	static const char *const other_pool[] = { QEMU, "-drive",
						  "file=rbd:other/o1", NULL };
	static const char *const in_ns[] = {
		QEMU, "-uuid", UUID2, "-drive", "file=rbd:vms/ns1/n1", NULL
	};
	static const char *const garbled[] = {
		QEMU, "-blockdev", "{\"driver\":\"rbd\",\"pool\":\"vms\",", NULL
	};
	static char *const bystander_pattern[] = { "bystander" };
	struct victim_filter f = rbd_filter(qemu_pattern, 1, "vms", NULL);
	const char *cut_none[] = { QEMU, "-drive", "file=rbd:other/c1", NULL,
				   NULL };
	const char *cut_found[] = { QEMU, "-drive", "file=rbd:vms/c2", NULL,
				    NULL };
	pid_t d1, d2, o, ns, nb, bad, cn, cf, u, fdu, k, g, x;
	struct events e = EVENTS_INIT;
	struct victim_scan_stats st;
	char uuids[4][37], *big;
	struct victim v[8];
	int n;

	/* An argument that alone fills the buffer: the rest is cut. */
	big = malloc(RBD_CMDLINE_MAX + 1);
	cr_assert_not_null(big);
	memset(big, 'a', RBD_CMDLINE_MAX);
	big[RBD_CMDLINE_MAX] = '\0';
	cut_none[3] = big;
	cut_found[3] = big;

	d1 = hold_pid();
	d2 = hold_pid();
	o = hold_pid();
	ns = hold_pid();
	nb = hold_pid(); /* another program, its command line unreadable */
	bad = hold_pid();
	cn = hold_pid();
	cf = hold_pid();
	u = hold_pid(); /* its command line unreadable */
	fdu = hold_pid(); /* an fd on the file storage, no rbd disk */
	k = hold_pid(); /* a kernel thread */
	g = gone_pid();
	x = hold_pid(); /* the filter's self */
	fake_proc(&(struct fake){ .pid = d1, .argv = drive });
	fake_proc(&(struct fake){ .pid = d2, .argv = nested });
	fake_proc(&(struct fake){ .pid = o, .argv = other_pool });
	fake_proc(&(struct fake){ .pid = ns, .argv = in_ns });
	fake_proc(&(struct fake){
		.pid = nb, .exe = fx.bystander, .argv = drive });
	fake_chmod(nb, "cmdline", 0);
	fake_proc(&(struct fake){ .pid = bad, .argv = garbled });
	fake_proc(&(struct fake){ .pid = cn, .argv = cut_none });
	fake_proc(&(struct fake){ .pid = cf, .argv = cut_found });
	fake_proc(&(struct fake){ .pid = u, .argv = drive });
	fake_chmod(u, "cmdline", 0);
	fake_proc(&(struct fake){ .pid = fdu, .fd = fx.disk, .cwd = fx.store });
	fake_proc(
		&(struct fake){ .pid = k, .argv = drive, .flags = PF_KTHREAD });
	/* Without a uuid: the census, opening no pidfd, cannot tell it gone. */
	fake_proc(&(struct fake){ .pid = g, .argv = nested });
	fake_proc(&(struct fake){ .pid = x, .argv = drive });
	fake_proc(&(struct fake){ .pid = 1, .argv = drive });
	fake_proc(&(struct fake){ .pid = getpid(), .argv = drive });
	f.self = x;
	free(big);
	drop_dac();

	memset(&st, 0xa5, sizeof(st));
	n = victims_scan_each(&fx.set, &f, fx.fake, on_found, on_named, &e,
			      &st);
	cr_assert_eq(n, 3, "found %d", n);
	cr_assert_eq(events_of(&e, 'f'), 3);
	expect_found(&e, d1, "rbd disk");
	expect_found(&e, d2, "rbd disk");
	expect_found(&e, cf, "rbd disk");
	/* Named right after found(), from the same read. */
	cr_assert_eq(events_of(&e, 'n'), 1);
	expect_named(&e, d1, UUID);
	cr_assert_eq(event_at(&e, 'n', d1), event_at(&e, 'f', d1) + 1);
	/* All but nb (by name), x, 1 and this process; bad, cn and u skipped. */
	expect_stats(&st, 11, 3);
	cr_assert(st.last_err == -EBADMSG || st.last_err == -E2BIG ||
			  st.last_err == -EACCES,
		  "last_err %d", st.last_err);
	cr_assert(st.last_pid == bad || st.last_pid == cn || st.last_pid == u,
		  "last_pid %d", st.last_pid);
	expect_fds(0);

	memset(&st, 0xa5, sizeof(st));
	memset(uuids, 'x', sizeof(uuids));
	n = victims_vm_uuids(&fx.set, &f, fx.fake, uuids, ARRAY_SIZE(uuids),
			     &st);
	cr_assert_eq(n, 1, "%d VMs", n);
	cr_assert_str_eq(uuids[0], UUID);
	cr_assert_eq(uuids[1][0], 'x');
	expect_stats(&st, 11, 3);
	expect_fds(0);

	/* Readable again: u is a victim, named too. */
	fake_chmod(u, "cmdline", 0644);
	n = victims_scan(&fx.set, &f, fx.fake, v, ARRAY_SIZE(v));
	cr_assert_eq(n, 4, "found %d", n);
	expect_victim(v, n, d1, "rbd disk", QEMU, UUID);
	expect_victim(v, n, d2, "rbd disk", QEMU, "");
	expect_victim(v, n, cf, "rbd disk", QEMU, "");
	expect_victim(v, n, u, "rbd disk", QEMU, UUID);
	expect_fds(4);
	victims_release(v, (unsigned int)n);

	/* A namespace of the pool is another storage. */
	f.rbd_ns = "ns1";
	memset(&st, 0xa5, sizeof(st));
	n = victims_scan_each(&fx.set, &f, fx.fake, on_found, NULL,
			      &(struct events)EVENTS_INIT, &st);
	cr_assert_eq(n, 1, "found %d", n);
	/* cf's disk is in the default namespace: cut, it is a skip now. */
	expect_stats(&st, 11, 3);
	n = victims_scan(&fx.set, &f, fx.fake, v, ARRAY_SIZE(v));
	cr_assert_eq(n, 1, "found %d", n);
	expect_victim(v, n, ns, "rbd disk", QEMU, UUID2);
	victims_release(v, (unsigned int)n);

	/* The filter alone decides who is read: nb, unreadable, is a skip. */
	f = rbd_filter(bystander_pattern, 1, "vms", NULL);
	memset(&st, 0xa5, sizeof(st));
	n = victims_scan(&fx.set, &f, fx.fake, v, ARRAY_SIZE(v));
	cr_assert_eq(n, 0, "found %d", n);
	n = victims_vm_uuids(&fx.set, &f, fx.fake, uuids, ARRAY_SIZE(uuids),
			     &st);
	cr_assert_eq(n, 0);
	expect_stats(&st, 1, 1);
	cr_assert_eq(st.last_err, -EACCES);
	cr_assert_eq(st.last_pid, nb);
	restore_caps();
	expect_fds(0);
}

/*
 * An rbd victim is found, killed and named the moment its command line
 * is read, not after the other candidates' are: one of those may hang
 * (its mmap lock held by a thread in D state on another storage).
 */
Test(victims_fake, rbd_found_while_another_hangs)
{
	static const char *const vm[] = {
		QEMU, "-uuid", UUID, "-drive", "file=rbd:vms/vm1", NULL
	};
	struct events e = EVENTS_INIT;
	struct scan_job j = {
		.f = rbd_filter(qemu_pattern, 1, "vms", NULL),
		.e = &e,
	};
	char fifo[1][PATH_MAX];
	bool early, held, released;
	pid_t a, b, v, h;

	a = hold_pid();
	b = hold_pid();
	fake_proc(&(struct fake){ .pid = a, .argv = vm });
	fake_proc(&(struct fake){ .pid = b, .argv = vm });
	/* The one listed second hangs. */
	v = fake_pos(a) < fake_pos(b) ? a : b;
	h = v == a ? b : a;
	fake_hang(h, "cmdline", fifo[0], sizeof(fifo[0]));

	cr_assert(!pthread_create(&j.thread, NULL, scan_thread, &j));
	early = wait_found(&e, v, 10000) && wait_event(&e, 'n', v, 10000);
	pthread_mutex_lock(&e.mu);
	held = !e.done && events_of(&e, 'f') == 1;
	pthread_mutex_unlock(&e.mu);
	released = release(&e, fifo, 1, 20000);
	cr_assert(released, "the scan did not end after the release");
	cr_assert(!pthread_join(j.thread, NULL));
	cr_assert(early, "found() or named() waited for another command line");
	cr_assert(held, "the scan did not wait on the hung command line");

	/* Released, the hung read ends empty: no disk, no skip. */
	cr_assert_eq(j.ret, 1, "found %d", j.ret);
	expect_found(&e, v, "rbd disk");
	expect_named(&e, v, UUID);
	cr_assert_eq(e.n, 2);
	expect_stats(&j.st, 2, 0);
	expect_fds(0);
}

struct restart {
	pid_t m; /* whose found() starts the others anew */
	pid_t r[2];
};

/* r[0] and r[1] die and new processes get their pids: a new start time. */
static void restart_others(const struct victim *v, void *arg)
{
	const struct restart *r = arg;

	if (v->pid != r->m)
		return;
	for (unsigned int i = 0; i < ARRAY_SIZE(r->r); i++)
		fake_stat(r->r[i], 0, 9999);
}

/* The highest fd open: RLIMIT_NOFILE bounds fd numbers. */
static int highest_fd(void)
{
	struct dirent *de;
	DIR *dir;
	int n = -1;

	dir = opendir("/proc/self/fd");
	cr_assert_not_null(dir);
	while ((de = readdir(dir)))
		if (de->d_name[0] != '.' && atoi(de->d_name) > n)
			n = atoi(de->d_name);
	closedir(dir);
	return n;
}

/*
 * More candidates than the scan holds fds for: the first ones keep theirs
 * into pass 2, the others are opened again there, and found again only if
 * their pid still is the process of pass 1 (its start time). With the
 * process's fd limit at what the scan may hold, nothing is skipped. For
 * an rbd storage (@pool), their command lines name its disks.
 */
static void past_the_fd_budget(const char *pool)
{
	static const char *const vm[] = { QEMU, "-drive", "file=rbd:vms/d",
					  NULL };
	struct restart r = { .m = 0 };
	struct events e = EVENTS_INIT;
	struct victim_filter f = rbd_filter(qemu_pattern, 1, pool, NULL);
	const unsigned int fill = VICTIM_SCAN_FDS / 2;
	const char *why = pool ? "rbd disk" : "mapping";
	struct victim_scan_stats st;
	struct rlimit rl, tight;
	pid_t before, after;
	int n;

	for (unsigned int i = 0; i < fill; i++)
		fake_proc(&(struct fake){ .pid = hold_pid() });
	r.r[0] = hold_pid();
	r.m = hold_pid();
	r.r[1] = hold_pid();
	fake_proc(&(struct fake){
		.pid = r.r[0], .maps_disk = !pool, .argv = vm });
	fake_proc(&(struct fake){ .pid = r.m, .maps_disk = !pool, .argv = vm });
	fake_proc(&(struct fake){
		.pid = r.r[1], .maps_disk = !pool, .argv = vm });
	for (unsigned int i = 0; i < fill; i++)
		fake_proc(&(struct fake){ .pid = hold_pid() });
	/* The one listed before m is looked at before its pid changes hands. */
	before = fake_pos(r.r[0]) < fake_pos(r.m) ? r.r[0] : r.r[1];
	after = before == r.r[0] ? r.r[1] : r.r[0];
	cr_assert_gt(fake_pos(after), fake_pos(r.m));
	cr_assert_geq(fake_pos(before), (int)fill);

	e.hook = restart_others;
	e.hook_arg = &r;
	cr_assert(!getrlimit(RLIMIT_NOFILE, &rl));
	tight = rl;
	tight.rlim_cur = (rlim_t)highest_fd() + 1 + VICTIM_SCAN_FDS + 16;
	cr_assert_lt(tight.rlim_cur, (rlim_t)(2 * fill + 3) * 2);
	cr_assert(!setrlimit(RLIMIT_NOFILE, &tight));
	memset(&st, 0xa5, sizeof(st));
	n = victims_scan_each(&fx.set, &f, fx.fake, on_found, on_named, &e,
			      &st);
	cr_assert(!setrlimit(RLIMIT_NOFILE, &rl));
	cr_assert_eq(n, 2, "found %d", n);
	expect_found(&e, r.m, why);
	expect_found(&e, before, why);
	/* Another process now: neither a victim nor a skip. */
	cr_assert_eq(event_at(&e, 'f', after), -1);
	expect_stats(&st, 2 * fill + 3, 0);
	expect_fds(0);
}

Test(victims_fake, candidates_past_the_fd_budget)
{
	past_the_fd_budget(NULL);
}

Test(victims_fake, rbd_candidates_past_the_fd_budget)
{
	past_the_fd_budget("vms");
}

static void kill_other(const struct victim *v, void *arg)
{
	pid_t *b = arg;

	if (*b <= 0)
		return;
	kill(*b, SIGKILL);
	waitpid(*b, NULL, 0);
	forget_kid(*b);
	*b = 0;
}

/*
 * On real processes: found() first, named() later for a qemu with a
 * -uuid, and a candidate that exits during the scan (killed and reaped
 * when the first victim is found, as a fencing core would) is no skip.
 */
Test(victims, found_then_named)
{
	static const char *const sh_args[] = { "-c", "read x", "-uuid", UUID,
					       NULL };
	struct victim_filter f = filter(qemu_pattern, 1);
	struct events e = EVENTS_INIT;
	struct victim_scan_stats st;
	pid_t a, b, h;
	int n;

	/* First, so that its lower pid is listed before the victims'. */
	b = spawn(&(struct kid){ .exe = fx.qemu });
	a = spawn(&(struct kid){ .exe = fx.qemu, .hold = fx.disk });
	h = spawn(&(struct kid){ .exe = fx.qemu_sh,
				 .args = sh_args,
				 .hold = fx.disk,
				 .stdin_pipe = true });
	e.hook = kill_other;
	e.hook_arg = &b;
	memset(&st, 0xa5, sizeof(st));
	n = victims_scan_each(&fx.set, &f, "/proc", on_found, on_named, &e,
			      &st);
	cr_assert_eq(n, 2, "found %d", n);
	cr_assert_eq(b, 0);
	expect_found(&e, a, "fd");
	expect_found(&e, h, "fd");
	cr_assert_eq(events_of(&e, 'n'), 1);
	expect_named(&e, h, UUID);
	/* Other qemu processes of the host may be looked at too. */
	cr_assert_geq(st.examined, 2);
	cr_assert_eq(st.skipped, 0, "skipped %u (%d: %d)", st.skipped,
		     st.last_pid, st.last_err);
	cr_assert(st.complete);
	expect_fds(0);

	/* Without named(), no command line is read. */
	memset(&e, 0, sizeof(e));
	n = victims_scan_each(&fx.set, &f, "/proc", on_found, NULL, &e, NULL);
	cr_assert_eq(n, 2);
	cr_assert_eq(events_of(&e, 'n'), 0);
	expect_fds(0);
}

/*
 * An rbd storage's victims: the processes matching the filter whose
 * command line names a disk in its pool and namespace, in either form;
 * never the VMs of another pool or namespace, nor a process the filter
 * does not name, whatever its command line.
 */
Test(victims, rbd_disks_of_the_pool)
{
	static const char *const drive[] = {
		"-c",
		"read x",
		"-name",
		"guest=vm1,debug-threads=on",
		"-uuid",
		UUID,
		"-drive",
		"file=rbd:" POOL "/vm1-disk0:id=admin:conf=/etc/ceph/ceph.conf,"
		"format=raw,if=none,id=drive-virtio-disk0,cache=none",
		NULL
	};
	static const char *const blockdev[] = {
		"-c",	     "read x",	     "-uuid",
		UUID2,	     "-blockdev",    LIBVIRT_RBD(POOL, "", "vm2-disk0"),
		"-blockdev", LIBVIRT_FORMAT, NULL
	};
	static const char *const in_ns[] = {
		"-c",
		"read x",
		"-uuid",
		UUID3,
		"-blockdev",
		LIBVIRT_RBD(POOL, "\"namespace\":\"tenant1\",", "vm3-disk0"),
		NULL
	};
	static const char *const other_pool[] = {
		"-c",  "read x", "-uuid",
		UUID4, "-drive", "file=rbd:" OTHER "/vm4-disk0,format=raw",
		NULL
	};
	static const char *const no_rbd[] = {
		"-c", "read x", "-drive",
		"file=/var/lib/libvirt/images/vm5.qcow2,format=qcow2", NULL
	};
	static char *const bystander_pattern[] = { "rbd-bystander" };
	struct victim_filter f = rbd_filter(rbd_qemu_pattern, 1, POOL, NULL);
	const struct devset none = { .n = 0 };
	char qemu[128], bystander[128], uuids[4][37];
	struct victim_scan_stats st;
	pid_t a, b, c, d, e, by;
	struct victim v[8];
	int n;

	rbd_qemu(qemu, sizeof(qemu));
	sh_named(bystander, sizeof(bystander), "rbd-bystander");
	a = spawn(&(struct kid){
		.exe = qemu, .args = drive, .stdin_pipe = true });
	b = spawn(&(struct kid){
		.exe = qemu, .args = blockdev, .stdin_pipe = true });
	c = spawn(&(struct kid){
		.exe = qemu, .args = in_ns, .stdin_pipe = true });
	d = spawn(&(struct kid){
		.exe = qemu, .args = other_pool, .stdin_pipe = true });
	e = spawn(&(struct kid){
		.exe = qemu, .args = no_rbd, .stdin_pipe = true });
	by = spawn(&(struct kid){
		.exe = bystander, .args = drive, .stdin_pipe = true });

	n = victims_scan(&none, &f, "/proc", v, ARRAY_SIZE(v));
	cr_assert_eq(n, 2, "found %d", n);
	expect_victim(v, n, a, "rbd disk", rbd_qemu_name, UUID);
	expect_victim(v, n, b, "rbd disk", rbd_qemu_name, UUID2);
	cr_assert_null(find(v, n, e));
	cr_assert_null(find(v, n, by));
	expect_fds(2);
	victims_release(v, (unsigned int)n);
	expect_fds(0);

	/* The bystander is not even looked at: five candidates, no skip. */
	memset(&st, 0xa5, sizeof(st));
	memset(uuids, 'x', sizeof(uuids));
	n = victims_vm_uuids(&none, &f, "/proc", uuids, ARRAY_SIZE(uuids), &st);
	cr_assert_eq(n, 2, "%d VMs", n);
	cr_assert((!strcmp(uuids[0], UUID) && !strcmp(uuids[1], UUID2)) ||
			  (!strcmp(uuids[0], UUID2) && !strcmp(uuids[1], UUID)),
		  "%.37s %.37s", uuids[0], uuids[1]);
	cr_assert_eq(uuids[2][0], 'x');
	expect_stats(&st, 5, 0);
	expect_fds(0);

	f.rbd_ns = "tenant1";
	n = victims_scan(&none, &f, "/proc", v, ARRAY_SIZE(v));
	cr_assert_eq(n, 1, "found %d", n);
	expect_victim(v, n, c, "rbd disk", rbd_qemu_name, UUID3);
	victims_release(v, (unsigned int)n);

	f = rbd_filter(rbd_qemu_pattern, 1, OTHER, "");
	n = victims_scan(&none, &f, "/proc", v, ARRAY_SIZE(v));
	cr_assert_eq(n, 1, "found %d", n);
	expect_victim(v, n, d, "rbd disk", rbd_qemu_name, UUID4);
	victims_release(v, (unsigned int)n);

	/* The pool byte for byte: a prefix is another pool. */
	f = rbd_filter(rbd_qemu_pattern, 1, "iofence-unit", NULL);
	n = victims_scan(&none, &f, "/proc", v, ARRAY_SIZE(v));
	cr_assert_eq(n, 0, "found %d", n);

	/* Named by the filter, the bystander's command line makes it one. */
	f = rbd_filter(bystander_pattern, 1, POOL, NULL);
	n = victims_scan(&none, &f, "/proc", v, ARRAY_SIZE(v));
	cr_assert_eq(n, 1, "found %d", n);
	expect_victim(v, n, by, "rbd disk", "rbd-bystander", UUID);
	victims_release(v, (unsigned int)n);
	expect_fds(0);
}

struct rbd_kill {
	pid_t gone; /* killed and reaped at the first found() */
	int kill_err;
};

/* The fencer's found(): the victim killed and dead before it returns. */
static void kill_victim(const struct victim *v, void *arg)
{
	struct rbd_kill *k = arg;
	siginfo_t si;

	k->kill_err = victim_kill(v);
	cr_assert(!waitid(P_PID, (id_t)v->pid, &si, WEXITED | WNOWAIT));
	kill_other(v, &k->gone);
}

/*
 * Each victim killed from found(), as the fencer does: the VM of another
 * pool lives on, a candidate that exits during the scan is neither a
 * victim nor a skip, and the victim is named although it is dead by pass
 * 3: its uuid came from the command line that made it one.
 */
Test(victims, rbd_victims_killed)
{
	static const char *const vm[] = { "-c",	    "read x",
					  "-uuid",  UUID,
					  "-drive", "file=rbd:" POOL "/vm1",
					  NULL };
	static const char *const other_pool[] = {
		"-c",  "read x", "-uuid",
		UUID2, "-drive", "file=rbd:" OTHER "/vm1",
		NULL
	};
	struct victim_filter f = rbd_filter(rbd_qemu_pattern, 1, POOL, NULL);
	struct rbd_kill k = { .kill_err = 1 };
	struct events e = EVENTS_INIT;
	struct victim_scan_stats st;
	char qemu[128];
	int n, status;
	pid_t a, d;

	rbd_qemu(qemu, sizeof(qemu));
	/* In this order, so that their pids are listed in it too. */
	a = spawn(&(struct kid){ .exe = qemu, .args = vm, .stdin_pipe = true });
	k.gone = spawn(
		&(struct kid){ .exe = qemu, .args = vm, .stdin_pipe = true });
	d = spawn(&(struct kid){
		.exe = qemu, .args = other_pool, .stdin_pipe = true });
	e.hook = kill_victim;
	e.hook_arg = &k;
	memset(&st, 0xa5, sizeof(st));
	n = victims_scan_each(&(struct devset){ .n = 0 }, &f, "/proc", on_found,
			      on_named, &e, &st);
	cr_assert_eq(n, 1, "found %d", n);
	cr_assert_eq(k.gone, 0);
	cr_assert_eq(k.kill_err, 0, "%d", k.kill_err);
	expect_found(&e, a, "rbd disk");
	expect_named(&e, a, UUID);
	cr_assert_eq(e.n, 2);
	expect_stats(&st, 3, 0);
	cr_assert_eq(waitpid(a, &status, 0), a);
	forget_kid(a);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		  "status %#x", status);
	cr_assert_eq(waitpid(d, &status, WNOHANG), 0);
	cr_assert_eq(proc_state(d), 'S');
	expect_fds(0);
}

Test(victims, proc_unreadable)
{
	struct victim_filter f = filter(qemu_pattern, 1);
	struct victim v[2];
	char uuids[1][37];
	char missing[128];

	struct victim_scan_stats st;
	struct events e = EVENTS_INIT;

	join(missing, sizeof(missing), fx.work, "no-proc");
	cr_assert_eq(victims_scan(&fx.set, &f, missing, v, 2), -ENOENT);
	memset(&st, 0xa5, sizeof(st));
	cr_assert_eq(victims_scan_each(&fx.set, &f, missing, on_found, on_named,
				       &e, &st),
		     -ENOENT);
	cr_assert_eq(e.n, 0);
	cr_assert_eq(st.examined, 0);
	cr_assert_eq(st.skipped, 0);
	cr_assert_not(st.complete);
	cr_assert_eq(victims_vm_uuids(&fx.set, &f, missing, uuids, 1, NULL),
		     -ENOENT);
	expect_fds(0);
}
