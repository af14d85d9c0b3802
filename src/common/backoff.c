/*-------------------------------------------------------------------------
 *
 * backoff.c
 *		Exponential backoff with jitter, for routes whose store is down and
 *		for events that failed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#if PG_VERSION_NUM >= 150000
#include "common/pg_prng.h"
#endif

#include "core/core.h"

/*
 * The delay before the next attempt after "failures" consecutive failures:
 * base_ms doubled per failure, capped at max_ms, then drawn uniformly from
 * its upper half ("equal jitter"), so that routes failing together do not
 * retry in lockstep while the delay still grows.  Always at least 1.
 */
int
polyglot_backoff_ms(int failures, int base_ms, int max_ms)
{
	double		delay = base_ms;
	int			i;

	for (i = 1; i < failures && delay < max_ms; i++)
		delay *= 2;
	if (delay > max_ms)
		delay = max_ms;
#if PG_VERSION_NUM >= 150000
	delay = delay / 2 + pg_prng_double(&pg_global_prng_state) * delay / 2;
#else
	delay = delay / 2 + ((double) random() / MAX_RANDOM_VALUE) * delay / 2;
#endif
	return delay < 1 ? 1 : (int) delay;
}
