/* Replays every committed fuzz input (the seed corpus and every input the
 * fuzzer ever found to crash or leak) through the same record interpreter
 * as the fuzz target, so each stays a regression test in the normal suite,
 * under ASan/UBSan and valgrind like the rest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_replay.h"

/* Replays each regular file of dir; returns how many there were. A
 * directory that is not there fails the test: a suite that replays nothing
 * must not pass. */
static int s_replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        fail_msg("cannot open %s", dir);
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        fseek(f, 0, SEEK_SET);
        uint8_t *data = malloc(len > 0 ? (size_t) len : 1);
        assert_non_null(data);
        assert_int_equal(fread(data, 1, (size_t) len, f), (size_t) len);
        fclose(f);
        print_message("replay %s (%ld bytes)\n", path, len);
        assert_int_equal(rc_replay(data, (size_t) len), 0);
        free(data);
        count++;
    }
    closedir(d);
    return count;
}

static void test_corpus(void **state)
{
    (void) state;
    assert_true(s_replay_dir(RC_FUZZ_DIR "/corpus") >= 5);
}

static void test_regressions(void **state)
{
    (void) state;
    /* The inputs the fuzzer once crashed on; each must stay. */
    assert_true(s_replay_dir(RC_FUZZ_DIR "/regressions") >= 3);
}

static int teardown(void **state)
{
    (void) state;
    rc_replay_shutdown();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),
        cmocka_unit_test(test_regressions),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
