// SPDX-License-Identifier: GPL-2.0-only
/*
 * A dummy VM stuck in D state while holding its own mmap lock, as a qemu
 * whose guest RAM or image is mapped from a storage that stopped answering.
 *
 *   mmap_hold FILE
 *
 * Maps the first page of FILE (then closes it: the mapping alone ties the
 * process to the storage, and its exit sends no FLUSH) and prints
 * "mapped". On SIGUSR1 one thread reads that page through /proc/self/mem:
 * a remote access faults the page in with the mmap lock held for read and
 * no way to drop it, so once FILE's reads hang, the thread waits in D
 * state holding the lock. The main thread then calls mmap(), which queues
 * for the lock as a writer; from then on every reader of the mm (the
 * process's cmdline, environ, smaps, and maps on kernels that take the
 * lock for it) blocks behind that writer: so do ps and pgrep -f. Prints
 * "holding" just before that mmap(). Lives until killed; it can die only
 * once the hang is released.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void *page;

static void *fault_in(void *arg)
{
	char c;
	int fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);

	if (fd < 0 || pread(fd, &c, 1, (off_t)(unsigned long)page) != 1)
		fprintf(stderr, "mmap_hold: read of the page: %s\n",
			strerror(errno));
	return NULL;
}

int main(int argc, char **argv)
{
	struct timespec gap = { 0, 200 * 1000 * 1000 };
	pthread_t reader;
	sigset_t set;
	int fd, sig;

	if (argc != 2) {
		fprintf(stderr, "usage: mmap_hold FILE\n");
		return 2;
	}
	fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "mmap_hold: %s: %s\n", argv[1],
			strerror(errno));
		return 1;
	}
	page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
	if (page == MAP_FAILED) {
		fprintf(stderr, "mmap_hold: mmap %s: %s\n", argv[1],
			strerror(errno));
		return 1;
	}
	close(fd);

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	printf("mapped\n");
	fflush(stdout);
	if (sigwait(&set, &sig))
		return 1;

	if (pthread_create(&reader, NULL, fault_in, NULL))
		return 1;
	/* The reader first: the writer must queue behind a held lock. */
	nanosleep(&gap, NULL);
	printf("holding\n");
	fflush(stdout);
	if (mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) ==
	    MAP_FAILED)
		fprintf(stderr, "mmap_hold: mmap: %s\n", strerror(errno));
	for (;;)
		pause();
}
