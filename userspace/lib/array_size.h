/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef IOFENCE_ARRAY_SIZE_H
#define IOFENCE_ARRAY_SIZE_H

/* The number of elements of an array (not of a pointer). */
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
