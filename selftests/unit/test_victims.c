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
#include <unistd.h>

#include <criterion/criterion.h>

#include "victims.h"

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
	n = victims_scan(&set, &f, "/proc", v, max);
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

Test(victims, proc_unreadable)
{
	struct victim_filter f = filter(qemu_pattern, 1);
	struct victim v[2];
	char uuids[1][37];
	char missing[128];

	join(missing, sizeof(missing), fx.work, "no-proc");
	cr_assert_eq(victims_scan(&fx.set, &f, missing, v, 2), -ENOENT);
	cr_assert_eq(victims_vm_uuids(&fx.set, &f, missing, uuids, 1, NULL),
		     -ENOENT);
	expect_fds(0);
}
