// SPDX-License-Identifier: GPL-2.0-only
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "rados_lib.h"

static struct rados_lib lib;
static const struct rados_lib *loaded;
static char why_not[256];
static pthread_once_t once = PTHREAD_ONCE_INIT;

#define SYM(field, name)                   \
	{                                  \
		(void **)&lib.field, #name \
	}

static void load(void)
{
	const struct {
		void **slot;
		const char *name;
	} syms[] = {
		SYM(create2, rados_create2),
		SYM(conf_read_file, rados_conf_read_file),
		SYM(conf_set, rados_conf_set),
		SYM(connect, rados_connect),
		SYM(shutdown, rados_shutdown),
		SYM(getaddrs, rados_getaddrs),
		SYM(wait_for_latest_osdmap, rados_wait_for_latest_osdmap),
		SYM(ioctx_create, rados_ioctx_create),
		SYM(ioctx_set_namespace, rados_ioctx_set_namespace),
		SYM(ioctx_destroy, rados_ioctx_destroy),
		SYM(mon_command, rados_mon_command),
		SYM(buffer_free, rados_buffer_free),
		SYM(read, rados_read),
		SYM(aio_create_completion2, rados_aio_create_completion2),
		SYM(aio_write_full, rados_aio_write_full),
		SYM(aio_wait_for_complete, rados_aio_wait_for_complete),
		SYM(aio_get_return_value, rados_aio_get_return_value),
		SYM(aio_release, rados_aio_release),
	};
	void *h = dlopen(RADOS_LIB_SONAME, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		snprintf(why_not, sizeof(why_not),
			 "%s (Debian package librados2)", dlerror());
		return;
	}
	for (size_t i = 0; i < sizeof(syms) / sizeof(*syms); i++) {
		*syms[i].slot = dlsym(h, syms[i].name);
		if (!*syms[i].slot) {
			snprintf(why_not, sizeof(why_not), "%s: no %s",
				 RADOS_LIB_SONAME, syms[i].name);
			return;
		}
	}
	loaded = &lib;
}

const struct rados_lib *rados_lib(const char **why)
{
	pthread_once(&once, load);
	*why = why_not;
	return loaded;
}
