// SPDX-License-Identifier: GPL-2.0-only
/*
 * Loads the BPF LSM write fence of vm_lsm.bpf.c on one file.
 *
 *   vm_lsm OBJECT FILE
 *
 * Loads OBJECT (a build of vm_lsm.bpf.c), names FILE in its map, attaches
 * the program to file_permission and prints "attached". On end of input it
 * prints "refused N" (the writes the kernel refused meanwhile), detaches,
 * and prints "detached". Exits 1 on any error, after saying which.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* As in vm_lsm.bpf.c. */
struct fenced_file {
	uint64_t ino;
	uint32_t dev;
	uint32_t pad;
	uint64_t refused;
};

static int fail(const char *what, int err)
{
	fprintf(stderr, "vm_lsm: %s: %s\n", what,
		strerror(err < 0 ? -err : err));
	return 1;
}

int main(int argc, char **argv)
{
	struct fenced_file f = { 0 };
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct bpf_link *link;
	struct bpf_map *map;
	struct stat st;
	uint32_t key = 0;
	char buf[64];
	int err;

	if (argc != 3) {
		fprintf(stderr, "usage: vm_lsm OBJECT FILE\n");
		return 2;
	}
	if (stat(argv[2], &st))
		return fail(argv[2], errno);
	f.ino = st.st_ino;
	f.dev = major(st.st_dev) << 20 | minor(st.st_dev);

	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj)
		return fail(argv[1], errno);
	err = bpf_object__load(obj);
	if (err)
		return fail("load", err);
	map = bpf_object__find_map_by_name(obj, "fenced");
	prog = bpf_object__find_program_by_name(obj, "fence_write");
	if (!map || !prog)
		return fail("the object's map or program", ENOENT);
	if (bpf_map_update_elem(bpf_map__fd(map), &key, &f, BPF_ANY))
		return fail("map update", errno);
	link = bpf_program__attach_lsm(prog);
	if (!link)
		return fail("attach", errno);
	printf("attached\n");
	fflush(stdout);

	while (read(STDIN_FILENO, buf, sizeof(buf)) > 0)
		;
	if (bpf_map_lookup_elem(bpf_map__fd(map), &key, &f))
		return fail("map lookup", errno);
	printf("refused %llu\n", (unsigned long long)f.refused);
	bpf_link__destroy(link);
	bpf_object__close(obj);
	printf("detached\n");
	return 0;
}
