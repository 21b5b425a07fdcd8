/*
 * kbmock_sasl.h - the server side of SASL for kbmock, the test cluster: known test users and one
 * authentication exchange per connection for PLAIN (RFC 4616) and SCRAM-SHA-256/512 (RFC 5802,
 * RFC 7677), as a Kafka broker's SaslServerAuthenticator runs them, and AWS_MSK_IAM / OAUTHBEARER
 * (MSK IAM tokens) as MSK does, verified by iam_verify.c against a credentials file. No sockets, no
 * Kafka framing: kbmock.c feeds client tokens in and sends the tokens that come out, either inside
 * SaslAuthenticate frames or raw (after SaslHandshake v0). Test code only.
 */
#ifndef KB_TESTS_KBMOCK_SASL_H
#define KB_TESTS_KBMOCK_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define KBM_MUSTCHECK __attribute__((warn_unused_result))

#define KBM_SASL_MAX_USERS 16    /* --sasl-user may repeat */
#define KBM_SASL_NAME_MAX 128    /* longest user name, NUL included */
#define KBM_SASL_PASS_MAX 128    /* longest password, NUL included */
#define KBM_SASL_SALT_LEN 16     /* random salt per user and SCRAM mechanism */
#define KBM_SASL_ITERATIONS 4096 /* what Kafka's kafka-configs.sh uses by default */
#define KBM_SASL_TOKEN_MAX 8192  /* longest token accepted or produced (IAM: session tokens) */
#define KBM_SASL_DIGEST_MAX 64   /* SHA-512 */

/* The mechanisms kbmock can enforce; also indexes into per-mechanism arrays. */
enum kbm_sasl_mech {
    KBM_SASL_PLAIN = 0,
    KBM_SASL_SCRAM_SHA_256,
    KBM_SASL_SCRAM_SHA_512,
    KBM_SASL_AWS_MSK_IAM, /* verified with --iam-credentials, --iam-region, --iam-host */
    KBM_SASL_OAUTHBEARER, /* an MSK IAM token, same credentials */
    KBM_SASL_N_MECHS
};

/* SCRAM credentials of one user for one mechanism, derived once at start-up (RFC 5802 3). */
struct kbm_sasl_scram_cred {
    uint8_t salt[KBM_SASL_SALT_LEN];         /* random */
    uint8_t stored_key[KBM_SASL_DIGEST_MAX]; /* H(ClientKey) */
    uint8_t server_key[KBM_SASL_DIGEST_MAX]; /* HMAC(SaltedPassword, "Server Key") */
};

/* One --sasl-user NAME:PASSWORD. */
struct kbm_sasl_user {
    char name[KBM_SASL_NAME_MAX];     /* user name, as clients send it (unescaped) */
    char password[KBM_SASL_PASS_MAX]; /* for PLAIN; never logged */
    struct kbm_sasl_scram_cred scram[KBM_SASL_N_MECHS]; /* used for the SCRAM entries only */
};

/* The SASL side of kbmock's configuration, shared by every connection. */
struct kbm_sasl_conf {
    bool enabled[KBM_SASL_N_MECHS];                 /* --sasl-mechanisms */
    struct kbm_sasl_user users[KBM_SASL_MAX_USERS]; /* --sasl-user, in order */
    int n_users;                                    /* entries in users */
    long session_ms;                                /* --sasl-session-ms; 0: sessions never end */
    bool v0_only; /* --sasl-handshake-v0-only: advertise SaslHandshake v0, no SaslAuthenticate */
    bool strict_nonce;    /* --sasl-strict-nonce: refuse librdkafka < 2.6.1's repeated nonce too */
    const char *iam_file; /* --iam-credentials FILE: lines "KEY_ID SECRET [TOKEN [EXPIRES
                             [PRINCIPAL]]]" ("-" for no token, EXPIRES epoch seconds, 0: none);
                             re-read at every IAM authentication, so a mock STS can append the
                             credentials it issues */
    const char *iam_region; /* --iam-region: the cluster's region */
    const char *iam_host;   /* --iam-host: the host AWS_MSK_IAM payloads must be signed for */
};

/* Where one exchange stands. */
enum kbm_sasl_step_state {
    KBM_SASL_STEP_FIRST = 0, /* waiting for the client's first (PLAIN: only) token */
    KBM_SASL_STEP_FINAL,     /* SCRAM: server-first sent, waiting for client-final;
                                OAUTHBEARER: error JSON sent, waiting for the client's %x01 */
    KBM_SASL_STEP_DONE       /* authenticated or failed; no more tokens */
};

/* One authentication exchange on one connection. */
struct kbm_sasl_exchange {
    enum kbm_sasl_mech mech;                /* chosen in SaslHandshake */
    enum kbm_sasl_step_state state;         /* see above */
    const struct kbm_sasl_user *user;       /* SCRAM: the user named in client-first */
    char principal[KBM_SASL_NAME_MAX];      /* the authenticated user, once state is DONE and ok */
    char gs2_header[KBM_SASL_NAME_MAX + 8]; /* SCRAM: "n,," or "n,a=...,", for the c= check */
    char client_nonce[128];                 /* SCRAM: r= of client-first */
    char combined_nonce[256];               /* SCRAM: client nonce + our nonce */
    char client_first_bare[KBM_SASL_TOKEN_MAX]; /* SCRAM: for AuthMessage */
    char server_first[KBM_SASL_TOKEN_MAX];      /* SCRAM: for AuthMessage */
    bool nonce_quirk; /* client-final repeated the client nonce (librdkafka < 2.6.1), tolerated */
    bool reauth;      /* a KIP-368 re-authentication: only the wording of failures differs */
    char iam_key_id[128];   /* IAM: the access key id that signed, once known ("" if none) */
    int64_t iam_session_ms; /* IAM, on OK: min(signature expiry, credential expiry) - now */
    char iam_error[256];    /* OAUTHBEARER: the refusal, sent once the client answered %x01 */
};

/* What one token did. */
enum kbm_sasl_result {
    KBM_SASL_CONTINUE = 0, /* send the output token and wait for the next client token */
    KBM_SASL_OK,           /* authenticated; send the output token (may be empty) */
    KBM_SASL_FAILED        /* refused: err holds the message for the client, why the reason */
};

/* True for AWS_MSK_IAM and OAUTHBEARER. */
#define KBM_SASL_IS_IAM(m) ((m) == KBM_SASL_AWS_MSK_IAM || (m) == KBM_SASL_OAUTHBEARER)

/*
 * The SessionLifetimeMs to grant after x succeeded: IAM's own (signature and credential expiry)
 * capped by --sasl-session-ms when set; otherwise --sasl-session-ms (0: none).
 */
int64_t kbm_sasl_session_ms(const struct kbm_sasl_conf *conf, const struct kbm_sasl_exchange *x);

/* "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "AWS_MSK_IAM", "OAUTHBEARER". */
const char *kbm_sasl_mech_name(enum kbm_sasl_mech mech);

/* Mechanism by its exact SASL name; false if unknown. */
bool kbm_sasl_mech_parse(const char *name, size_t len, enum kbm_sasl_mech *out) KBM_MUSTCHECK;

/*
 * Adds "NAME:PASSWORD" (split at the first ':') to conf and derives its SCRAM credentials.
 * false with err set when the form is wrong, a part too long or the table full.
 */
bool kbm_sasl_conf_add_user(struct kbm_sasl_conf *conf, const char *spec, char *err,
                            size_t errlen) KBM_MUSTCHECK;

/* Starts an exchange for mech (which the caller checked is enabled). */
void kbm_sasl_exchange_init(struct kbm_sasl_exchange *x, enum kbm_sasl_mech mech, bool reauth);

/* Wipes the exchange's state (nonces, messages). */
void kbm_sasl_exchange_clear(struct kbm_sasl_exchange *x);

/*
 * Feeds one client token. On CONTINUE/OK out[0..*outlen) is the token to send back. On FAILED,
 * err is the client-facing message (as Kafka words it: no detail that helps a guesser) and why
 * the precise reason for kbmock's log; neither contains a password. The exchange is DONE after
 * OK or FAILED.
 */
enum kbm_sasl_result kbm_sasl_exchange_step(const struct kbm_sasl_conf *conf,
                                            struct kbm_sasl_exchange *x, const uint8_t *in,
                                            size_t inlen, uint8_t *out, size_t outcap,
                                            size_t *outlen, char *err, size_t errlen, char *why,
                                            size_t whylen) KBM_MUSTCHECK;

#endif
