/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The on-disk form of the daemon's state: what is armed, the host state and
 * the event journal, as one JSON document framed by a header that carries
 * a format version, the body's length and its CRC-32, so that a torn or
 * corrupted file is recognised and never half-applied.
 *
 *   iofence-state <version> <length> <crc32 as 8 hex digits>\n<body>
 *
 * Pure functions; the daemon writes the bytes atomically (temp file,
 * fsync, rename, fsync of the folder).
 */
#ifndef IOFENCE_STATE_FILE_H
#define IOFENCE_STATE_FILE_H

#include <stddef.h>
#include <jansson.h>

#define STATE_FILE_MAGIC "iofence-state"
#define STATE_FILE_VERSION 1
/* A state file larger than this is refused as corrupt. */
#define STATE_FILE_MAX (16 * 1024 * 1024)

/*
 * @doc is borrowed. Returns a malloc'ed buffer (NUL-terminated, the NUL
 * not counted in *@len), or NULL with errno ENOMEM, EINVAL when @doc is
 * not an object, or EFBIG when the body would exceed STATE_FILE_MAX:
 * nothing is ever written that state_decode() would refuse.
 */
char *state_encode(json_t *doc, size_t *len);
/*
 * Returns 0 and a new reference in *@doc, or -EINVAL (bad magic,
 * unknown version, length or CRC mismatch, JSON not an object) with what
 * was wrong in @err. -ENOMEM says nothing about the file: do not discard it.
 * Beware that jansson reports some failed allocations in its lexer as
 * syntax errors, so a "body: ..." error behind a matching CRC is -EINVAL
 * but more likely memory pressure than a corrupt file.
 */
int state_decode(const char *buf, size_t len, json_t **doc, char *err,
		 size_t errlen);

#endif
