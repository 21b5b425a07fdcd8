/*
 * plain.c - SASL PLAIN (see plain.h). One message, so the state only remembers that it was
 * sent; the broker's answer (empty on success, an error code otherwise) ends the exchange.
 */
#include "auth/plain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct plain_state {
    bool sent; /* the one message has been written */
};

bool
plain_message(const char *user, const char *password, struct auth_buf *out, char *err,
              size_t errlen)
{
    size_t ulen = strlen(user), plen = strlen(password);

    auth_buf_free(out);
    if (ulen == 0) {
        snprintf(err, errlen, "PLAIN needs a user name");
        return false;
    }
    out->data = malloc(ulen + plen + 2);
    if (!out->data) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    out->data[0] = 0; /* authzid: empty, act as the user itself */
    memcpy(out->data + 1, user, ulen);
    out->data[1 + ulen] = 0;
    memcpy(out->data + 2 + ulen, password, plen);
    out->len = ulen + plen + 2;
    return true;
}

static bool
plain_start(void *state, const struct auth_creds *creds, struct auth_buf *out, char *err,
            size_t errlen)
{
    struct plain_state *p = state;

    p->sent = true;
    return plain_message(creds->username, creds->password, out, err, errlen);
}

static bool
plain_step(void *state, const uint8_t *in, size_t len, struct auth_buf *out, bool *done, char *err,
           size_t errlen)
{
    struct plain_state *p = state;

    (void)in;
    (void)out;
    if (!p->sent) {
        snprintf(err, errlen, "PLAIN: answer before the message was sent");
        return false;
    }
    if (len != 0) {
        /* RFC 4616 has no server message; Kafka sends empty AuthBytes. */
        snprintf(err, errlen, "PLAIN: the broker answered with %zu unexpected bytes", len);
        return false;
    }
    *done = true;
    return true;
}

static void
plain_clear(void *state)
{
    (void)state;
}

const struct auth_mech plain_mech = {
    .name = "PLAIN",
    .state_size = sizeof(struct plain_state),
    .start = plain_start,
    .step = plain_step,
    .clear = plain_clear,
};
