/* replay.h - what oauth.c uses of the replay cache (replay.c) beyond creto/nhi_oauth.h. */
#ifndef CRETO_NHI_REPLAY_H
#define CRETO_NHI_REPLAY_H

#include <stdint.h>

#include "creto/nhi_oauth.h"

#define NHI_REPLAY_KEY 16

enum { NHI_REPLAY_OK = 0, NHI_REPLAY_SEEN = 1, NHI_REPLAY_FULL = 2, NHI_REPLAY_NOMEM = 3 };

/* The cache key of (sub, jti); -1 when hashing failed. */
int nhi_replay_key(creto_nhi_replay *r, const char *sub, const char *jti, uint8_t out[NHI_REPLAY_KEY]);
/* Atomically: NHI_REPLAY_SEEN when key is live, else insert it until
 * `until` (NHI_REPLAY_OK) or NHI_REPLAY_FULL / NHI_REPLAY_NOMEM. */
int nhi_replay_check_insert(creto_nhi_replay *r, const uint8_t key[NHI_REPLAY_KEY], int64_t until, int64_t now);

#endif
