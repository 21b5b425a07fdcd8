/*
 * mech.h - the mechanism-independent side of SASL: one table entry per mechanism (scram.c,
 * plain.c; AWS_MSK_IAM and OAUTHBEARER slot in the same way) and a session that runs one
 * exchange. A mechanism turns the server's messages into the client's; the caller carries
 * them in SaslAuthenticate frames (proxy/sasl.c) and never looks inside.
 */
#ifndef KB_AUTH_MECH_H
#define KB_AUTH_MECH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#ifndef KB_MUSTCHECK
#define KB_MUSTCHECK __attribute__((warn_unused_result))
#endif

/* A message a mechanism wrote: heap bytes that may hold secrets, wiped when freed. */
struct auth_buf {
    uint8_t *data; /* NULL when empty */
    size_t len;    /* bytes in data */
};

/* Frees b->data after OPENSSL_cleanse and leaves b empty. Safe on an empty buffer. */
void auth_buf_free(struct auth_buf *b);

/*
 * Copies p[0..len) into b (freeing what b held first). false when allocation fails (b is then
 * empty).
 */
bool auth_buf_set(struct auth_buf *b, const void *p, size_t len) KB_MUSTCHECK;

/* What a mechanism may need. Views: the session copies what it keeps. */
struct auth_creds {
    const char *username; /* SCRAM/PLAIN user name */
    const char *password; /* secret; never logged */
    const char *host;     /* broker host the connection goes to (signing mechanisms need it) */
    /* AWS_MSK_IAM / OAUTHBEARER only: */
    const char *aws_key_id;        /* access key id */
    const char *aws_secret;        /* secret access key; never logged */
    const char *aws_session_token; /* temporary credentials' token, or "" */
    time_t aws_expiration;         /* when the credentials expire; 0: never (static keys) */
    const char *aws_region;        /* the cluster's region (conf_aws_region) */
    const char *user_agent;        /* "kbridge/<version>" */
    time_t now;                    /* signing time; 0: time(NULL) */
};

/*
 * One mechanism. state is state_size bytes, zeroed before start(). start() writes the first
 * client message. step() reads the server's answer to the last message and either writes the
 * next one (*done false) or finishes (*done true, out empty): it returns false, with one
 * sentence in err, when the answer is wrong (e.g. a bad SCRAM server signature). clear() wipes
 * and frees whatever state holds; it is called once after start(), whatever happened.
 */
struct auth_mech {
    const char *name;  /* the name Kafka uses in SaslHandshake ("SCRAM-SHA-512") */
    size_t state_size; /* bytes of per-exchange state */
    bool (*start)(void *state, const struct auth_creds *creds, struct auth_buf *out, char *err,
                  size_t errlen);
    bool (*step)(void *state, const uint8_t *in, size_t len, struct auth_buf *out, bool *done,
                 char *err, size_t errlen);
    void (*clear)(void *state);
};

/* The mechanism named name (exact, as Kafka spells it), or NULL. */
const struct auth_mech *auth_mech_find(const char *name);

/* "SCRAM-SHA-512, SCRAM-SHA-256, PLAIN, AWS_MSK_IAM, OAUTHBEARER": the known names, for error
 * messages. */
const char *auth_mech_names(void);

/* One exchange with one broker. */
struct auth_session;

/*
 * Starts an exchange with mech and writes the first client message into first. NULL with a
 * reason in err on failure (nothing to free then).
 */
struct auth_session *auth_session_new(const struct auth_mech *mech, const struct auth_creds *creds,
                                      struct auth_buf *first, char *err, size_t errlen);

/* mech->step() for this session; see struct auth_mech. */
bool auth_session_step(struct auth_session *s, const uint8_t *in, size_t len, struct auth_buf *out,
                       bool *done, char *err, size_t errlen) KB_MUSTCHECK;

/* Wipes and frees the session. NULL is fine. */
void auth_session_free(struct auth_session *s);

/* The session's mechanism name. */
const char *auth_session_mech(const struct auth_session *s);

#endif
