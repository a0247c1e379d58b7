/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Splits a byte stream into newline-terminated lines of bounded length,
 * in one fixed buffer: receive into linebuf_space(), account with
 * linebuf_commit(), take lines with linebuf_next().
 */
#ifndef IOFENCE_LINEBUF_H
#define IOFENCE_LINEBUF_H

#include <stddef.h>

struct linebuf {
	char *buf;
	size_t start; /* first byte not yet returned as a line */
	size_t len; /* bytes received */
	size_t cap; /* max line + its newline */
};

int linebuf_init(struct linebuf *lb, size_t max_line);
void linebuf_free(struct linebuf *lb);
/* Room to receive into; never 0 while no error has been returned. */
char *linebuf_space(struct linebuf *lb, size_t *avail);
void linebuf_commit(struct linebuf *lb, size_t n);
/*
 * Returns 1 with the next line (NUL-terminated, newline and a trailing CR
 * removed) valid until the next linebuf_space(); 0 when no whole line is
 * buffered; -EMSGSIZE when a line is longer than the maximum.
 */
int linebuf_next(struct linebuf *lb, char **line, size_t *len);

#endif
