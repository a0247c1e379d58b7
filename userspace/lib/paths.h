/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef IOFENCE_PATHS_H
#define IOFENCE_PATHS_H

#include <sys/types.h>

/*
 * Creates the folders above @path with @mode, like `mkdir -p $(dirname
 * path)`: 0, or a negative errno. For the daemon's own paths (socket,
 * state, locks), never a storage's.
 */
int mkdir_parents(const char *path, mode_t mode);

#endif
