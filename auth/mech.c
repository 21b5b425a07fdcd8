/*
 * mech.c - the mechanism table and the session wrapper around one mechanism's state (see
 * mech.h). Adding a mechanism: a file with its struct auth_mech, and one line in auth_mechs.
 */
#include "auth/mech.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth/msk_iam_mech.h"
#include "auth/plain.h"
#include "auth/scram.h"

static const struct auth_mech *const auth_mechs[] = {
    &scram_sha512_mech, &scram_sha256_mech, &plain_mech, &msk_iam_mech, &oauthbearer_mech,
};

struct auth_session {
    const struct auth_mech *mech; /* the mechanism this exchange runs */
    void *state;                  /* mech->state_size bytes, wiped by mech->clear */
};

void
auth_buf_free(struct auth_buf *b)
{
    if (b->data) {
        OPENSSL_cleanse(b->data, b->len);
        free(b->data);
    }
    b->data = NULL;
    b->len = 0;
}

bool
auth_buf_set(struct auth_buf *b, const void *p, size_t len)
{
    auth_buf_free(b);
    b->data = malloc(len ? len : 1);
    if (!b->data) {
        return false;
    }
    if (len) {
        memcpy(b->data, p, len);
    }
    b->len = len;
    return true;
}

const struct auth_mech *
auth_mech_find(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(auth_mechs) / sizeof(auth_mechs[0]); i++) {
        if (strcmp(auth_mechs[i]->name, name) == 0) {
            return auth_mechs[i];
        }
    }
    return NULL;
}

const char *
auth_mech_names(void)
{
    return "SCRAM-SHA-512, SCRAM-SHA-256, PLAIN, AWS_MSK_IAM, OAUTHBEARER";
}

struct auth_session *
auth_session_new(const struct auth_mech *mech, const struct auth_creds *creds,
                 struct auth_buf *first, char *err, size_t errlen)
{
    struct auth_session *s = calloc(1, sizeof(*s));

    if (!s || !(s->state = calloc(1, mech->state_size))) {
        snprintf(err, errlen, "out of memory starting %s", mech->name);
        free(s);
        return NULL;
    }
    s->mech = mech;
    if (!mech->start(s->state, creds, first, err, errlen)) {
        auth_buf_free(first);
        auth_session_free(s);
        return NULL;
    }
    return s;
}

bool
auth_session_step(struct auth_session *s, const uint8_t *in, size_t len, struct auth_buf *out,
                  bool *done, char *err, size_t errlen)
{
    *done = false;
    if (!s->mech->step(s->state, in, len, out, done, err, errlen)) {
        auth_buf_free(out);
        return false;
    }
    return true;
}

void
auth_session_free(struct auth_session *s)
{
    if (!s) {
        return;
    }
    s->mech->clear(s->state);
    OPENSSL_cleanse(s->state, s->mech->state_size);
    free(s->state);
    free(s);
}

const char *
auth_session_mech(const struct auth_session *s)
{
    return s->mech->name;
}
