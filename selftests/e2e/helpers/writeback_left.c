// SPDX-License-Identifier: GPL-2.0-only
/*
 * A dummy VM that leaves writes in flight behind it, as a qemu whose
 * guest wrote through the page cache does: once it is killed, the kernel
 * still writes its dirty pages out, and they may land whenever the
 * storage answers again.
 *
 *   writeback_left DEVICE OFFSET
 *
 * Writes 64 KiB at OFFSET of DEVICE through the page cache and prints
 * "written". On SIGUSR1 it starts their writeback without waiting for it
 * (sync_file_range(SYNC_FILE_RANGE_WRITE)), prints "started", and sleeps
 * until killed: not in D state, so a kill takes it at once, while the
 * writeback stays in the device's queue.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LEN (64 * 1024)

static volatile sig_atomic_t go;

static void on_usr1(int sig)
{
	go = 1;
}

int main(int argc, char **argv)
{
	static char buf[LEN];
	off_t off;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: writeback_left DEVICE OFFSET\n");
		return 2;
	}
	off = strtoll(argv[2], NULL, 0);
	fd = open(argv[1], O_RDWR | O_CLOEXEC);
	memset(buf, 0x5a, sizeof(buf));
	if (fd < 0 || pwrite(fd, buf, LEN, off) != LEN) {
		perror("writeback_left: write");
		return 1;
	}
	signal(SIGUSR1, on_usr1);
	printf("written\n");
	fflush(stdout);
	while (!go)
		pause();
	if (sync_file_range(fd, off, LEN, SYNC_FILE_RANGE_WRITE))
		perror("writeback_left: sync_file_range");
	printf("started\n");
	fflush(stdout);
	for (;;)
		pause();
}
