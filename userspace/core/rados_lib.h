/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * librados, loaded when the first rbd storage connects, not at start.
 *
 * Linked in, librados and libceph-common (12 MiB, two dozen more
 * libraries) would be loaded, relocated and, under mlockall, made
 * resident at every start of the daemon: that took its start from about
 * 25 ms to 150-250 ms here, and a restart is a window without heartbeats.
 * A host without Ceph storages never loads it, and needs no Ceph package.
 * Only link threads call this (dlopen reads files: never the core's or
 * the control loop's thread); it is never unloaded.
 */
#ifndef IOFENCE_RADOS_LIB_H
#define IOFENCE_RADOS_LIB_H

#include <rados/librados.h>

#define RADOS_LIB_SONAME "librados.so.2"

struct rados_lib {
	__typeof__(&rados_create2) create2;
	__typeof__(&rados_conf_read_file) conf_read_file;
	__typeof__(&rados_conf_set) conf_set;
	__typeof__(&rados_connect) connect;
	__typeof__(&rados_shutdown) shutdown;
	__typeof__(&rados_getaddrs) getaddrs;
	__typeof__(&rados_wait_for_latest_osdmap) wait_for_latest_osdmap;
	__typeof__(&rados_ioctx_create) ioctx_create;
	__typeof__(&rados_ioctx_set_namespace) ioctx_set_namespace;
	__typeof__(&rados_ioctx_destroy) ioctx_destroy;
	__typeof__(&rados_mon_command) mon_command;
	__typeof__(&rados_buffer_free) buffer_free;
	__typeof__(&rados_read) read;
	__typeof__(&rados_aio_create_completion2) aio_create_completion2;
	__typeof__(&rados_aio_write_full) aio_write_full;
	__typeof__(&rados_aio_wait_for_complete) aio_wait_for_complete;
	__typeof__(&rados_aio_get_return_value) aio_get_return_value;
	__typeof__(&rados_aio_release) aio_release;
};

/*
 * The library, loaded on the first call (thread-safe); NULL when it
 * cannot be, and *@why says why (dlerror's words), once for all calls.
 */
const struct rados_lib *rados_lib(const char **why);

#endif
