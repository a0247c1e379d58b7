/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The fuzz targets' entry points. Each fuzz_<name>.c defines one, and
 * libFuzzer's LLVMFuzzerTestOneInput() as a weak alias of it, so that the
 * fuzzer binary links one of them and the regression unit test links all
 * of them and calls each by its own name.
 *
 * An entry point takes any bytes, returns 0, and aborts (FUZZ_CHECK) when
 * an invariant of the code under test breaks: sanitizers catch memory
 * errors, the checks catch wrong answers that are not crashes.
 */
#ifndef IOFENCE_FUZZ_H
#define IOFENCE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_ENTRY(fn)                                               \
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) \
		__attribute__((weak, alias(#fn)))

#define FUZZ_CHECK(cond)                                                 \
	do {                                                             \
		if (!(cond)) {                                           \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", \
				__FILE__, __LINE__, #cond);              \
			abort();                                         \
		}                                                        \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int fuzz_request(const uint8_t *data, size_t size);
int fuzz_state(const uint8_t *data, size_t size);
int fuzz_record(const uint8_t *data, size_t size);
int fuzz_config(const uint8_t *data, size_t size);
int fuzz_linebuf(const uint8_t *data, size_t size);
int fuzz_rbd_cmdline(const uint8_t *data, size_t size);

#endif
