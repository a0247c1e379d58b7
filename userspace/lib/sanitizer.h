/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Whether this program is built with AddressSanitizer (gcc defines
 * __SANITIZE_ADDRESS__, clang answers __has_feature): its allocator
 * replaces malloc, and it changes what real-time threads may do (see
 * IOFENCE_BUILD_RT_PRIORITY in config.h).
 */
#ifndef IOFENCE_SANITIZER_H
#define IOFENCE_SANITIZER_H

#if defined(__SANITIZE_ADDRESS__)
#define BUILD_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BUILD_ASAN 1
#endif
#endif
#ifndef BUILD_ASAN
#define BUILD_ASAN 0
#endif

#endif
