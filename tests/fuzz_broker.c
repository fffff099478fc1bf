/* fuzz_broker: libFuzzer target for the broker's message handling. Each
 * input is a sequence of records (fuzz_replay.h) fed to a fresh broker core
 * as messages on its three channels, with a fake clock that fires timers.
 * The core is finalised after each input, so leaks show per input. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rc_replay(data, size);
    return 0;
}
