/*
 * plain.h - SASL PLAIN (RFC 4616) as Kafka uses it: one message "\0user\0password" (empty
 * authorization identity), then the broker's empty answer or an error.
 */
#ifndef KB_AUTH_PLAIN_H
#define KB_AUTH_PLAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/mech.h"

/*
 * Writes "\0user\0password" into out. false with a reason in err for an empty user name or
 * allocation failure. Both are C strings, so neither can hold the NUL separator.
 */
bool plain_message(const char *user, const char *password, struct auth_buf *out, char *err,
                   size_t errlen) KB_MUSTCHECK;

extern const struct auth_mech plain_mech; /* "PLAIN" */

#endif
