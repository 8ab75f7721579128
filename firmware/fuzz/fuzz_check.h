/* CHECK for the libFuzzer targets: a failed property aborts, which libFuzzer reports as a crash
 * with the input that caused it (assert() would vanish under -DNDEBUG). */
#ifndef NK_FUZZ_CHECK_H
#define NK_FUZZ_CHECK_H

#include <stdlib.h>

#define CHECK(cond)    \
    do {               \
        if (!(cond)) { \
            abort();   \
        }              \
    } while (0)

#endif /* NK_FUZZ_CHECK_H */
