/* RUNNING_ON_VALGRIND from valgrind's header when it is installed, else 0:
 * for the few checks of timing that valgrind's slow, serialised threads
 * cannot meet. */
#ifndef RC_VALGRIND_H
#define RC_VALGRIND_H

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#endif
