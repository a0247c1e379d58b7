/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef IOFENCE_HEX_H
#define IOFENCE_HEX_H

/*
 * The value of hex digit @c, or -1. Not isxdigit(): the formats read
 * (uuids, /proc, the record) are ASCII whatever the locale says.
 */
static inline int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif
