/*
 * scram.h - the client side of SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka
 * runs it: no channel binding ("n,," / c=biws), user names saslname-escaped, no SASLprep.
 * Pure functions over one struct scram, with an injectable client nonce for tests; the
 * password is wiped as soon as the proof is computed, everything else by scram_clear().
 */
#ifndef KB_AUTH_SCRAM_H
#define KB_AUTH_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/mech.h"

#define SCRAM_MIN_ITERATIONS 4096  /* Kafka's minimum (ScramMechanism.minIterations) */
#define SCRAM_MAX_ITERATIONS 16384 /* Kafka's maximum: bounds the PBKDF2 work a broker asks for */
#define SCRAM_NONCE_MAX 128        /* longest client nonce accepted */
#define SCRAM_MSG_MAX 4096         /* longest server message accepted */
#define SCRAM_HASH_MAX 64          /* SHA-512 digest bytes */

enum scram_hash { SCRAM_SHA_256 = 0, SCRAM_SHA_512 };
enum scram_state { SCRAM_INIT = 0, SCRAM_SENT_FIRST, SCRAM_SENT_FINAL, SCRAM_DONE };

/* One exchange. Zero it before scram_client_first(); scram_clear() wipes it again. */
struct scram {
    enum scram_hash hash;                     /* SHA-256 or SHA-512 */
    enum scram_state state;                   /* which message comes next */
    char *password;                           /* copy, wiped after scram_client_final() */
    char *client_first_bare;                  /* "n=<saslname>,r=<nonce>" */
    char nonce[SCRAM_NONCE_MAX + 1];          /* our client nonce */
    uint8_t server_signature[SCRAM_HASH_MAX]; /* the v= we expect in server-final */
    size_t hash_len;                          /* digest bytes of hash */
};

/*
 * Writes client-first "n,,n=<user>,r=<nonce>" into out (',' and '=' in user escaped as =2C,
 * =3D). nonce NULL: 24 base64 characters from RAND_bytes; otherwise printable ASCII without
 * ',' (tests). Copies the password. false with a reason in err for an empty user, a bad
 * nonce, a RAND failure or allocation failure.
 */
bool scram_client_first(struct scram *s, enum scram_hash hash, const char *user,
                        const char *password, const char *nonce, struct auth_buf *out, char *err,
                        size_t errlen) KB_MUSTCHECK;

/*
 * Reads server-first "r=<nonce>,s=<salt>,i=<count>[,ext...]" and writes client-final
 * "c=biws,r=<nonce>,p=<proof>" into out. Refused with a named reason: a mandatory extension
 * (m=), a nonce that does not start with ours or adds nothing, a bad salt, an iteration count
 * outside SCRAM_MIN_ITERATIONS..SCRAM_MAX_ITERATIONS, an e= error from the server, or any other
 * syntax error. Wipes the password copy either way.
 */
bool scram_client_final(struct scram *s, const uint8_t *server_first, size_t len,
                        struct auth_buf *out, char *err, size_t errlen) KB_MUSTCHECK;

/*
 * Reads server-final: "v=<signature>" must equal the signature computed from the password
 * (compared in constant time), or the exchange fails ("the broker's SCRAM server signature does
 * not match"); "e=<message>" fails with the server's message.
 */
bool scram_server_final(struct scram *s, const uint8_t *in, size_t len, char *err,
                        size_t errlen) KB_MUSTCHECK;

/* Wipes and frees everything s holds; s is zeroed. */
void scram_clear(struct scram *s);

extern const struct auth_mech scram_sha256_mech; /* "SCRAM-SHA-256" */
extern const struct auth_mech scram_sha512_mech; /* "SCRAM-SHA-512" */

#endif
