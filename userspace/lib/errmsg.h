/* SPDX-License-Identifier: GPL-2.0-only */
/* Validation errors of the pure decoders: a message for the caller. */
#ifndef IOFENCE_ERRMSG_H
#define IOFENCE_ERRMSG_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/* Writes the message into @err (when given) and returns -EINVAL. */
__attribute__((format(printf, 3, 4))) static inline int
errmsg_invalid(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

#endif
