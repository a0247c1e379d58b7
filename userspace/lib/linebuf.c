// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "linebuf.h"

int linebuf_init(struct linebuf *lb, size_t max_line)
{
	lb->start = lb->len = 0;
	lb->cap = max_line + 1;
	lb->buf = malloc(lb->cap + 1); /* + the NUL that ends a line */
	return lb->buf ? 0 : -ENOMEM;
}

void linebuf_free(struct linebuf *lb)
{
	free(lb->buf);
	lb->buf = NULL;
}

char *linebuf_space(struct linebuf *lb, size_t *avail)
{
	if (lb->start) {
		memmove(lb->buf, lb->buf + lb->start, lb->len - lb->start);
		lb->len -= lb->start;
		lb->start = 0;
	}
	*avail = lb->cap - lb->len;
	return lb->buf + lb->len;
}

void linebuf_commit(struct linebuf *lb, size_t n)
{
	lb->len += n;
}

int linebuf_next(struct linebuf *lb, char **line, size_t *len)
{
	char *p = lb->buf + lb->start;
	size_t n = lb->len - lb->start;
	char *nl = memchr(p, '\n', n);

	if (!nl)
		return n >= lb->cap ? -EMSGSIZE : 0;
	*nl = '\0';
	*len = nl - p;
	if (*len && p[*len - 1] == '\r')
		p[--*len] = '\0';
	*line = p;
	lb->start += nl - p + 1;
	return 1;
}
