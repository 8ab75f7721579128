/* Which form of the compiled model nk_kws runs: a model folder with the streaming form
 * (nk_model_stream.h from `nanokws compile`) is pushed one frame at a time (only the new time rows
 * are computed); otherwise the model's window of frames is kept and nk_model_invoke() runs on it. Same scores,
 * bit for bit, at the same hops.
 *
 * Decided here from what the include path holds. `nanokws export --arduino-library` replaces this
 * file with the form fixed, so that a library never names a header it does not have (PlatformIO's
 * dependency finder does not evaluate __has_include and would pull in another library that has it). */
#ifndef NK_KWS_FORM_H
#define NK_KWS_FORM_H

#if defined(__has_include)
#if __has_include("nk_model_stream.h")
#include "nk_model_stream.h"
#define NK_KWS_STREAMING 1
#endif
#endif
#ifndef NK_KWS_STREAMING
#define NK_KWS_STREAMING 0
#endif

#endif /* NK_KWS_FORM_H */
