/*
 * b64.h - base64 (RFC 4648 section 4) and base64url without padding (section 5), as SASL
 * mechanisms need them: SCRAM's nonces, proofs and signatures, and MSK IAM's OAUTHBEARER token.
 * Pure functions over caller buffers; no allocation.
 */
#ifndef KB_AUTH_B64_H
#define KB_AUTH_B64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Characters b64_encode() writes for len input bytes, plus the terminating NUL. */
#define KB_B64_ENCODED_MAX(len) ((((len) + 2) / 3) * 4 + 1)

/*
 * Encodes in[0..len) into out (NUL-terminated). url: the URL-safe alphabet ('-', '_') and no
 * '=' padding. Returns the number of characters written (without the NUL), or 0 when outlen is
 * too small (out is then an empty string if outlen > 0).
 */
size_t b64_encode(const uint8_t *in, size_t len, bool url, char *out, size_t outlen);

/*
 * Decodes standard base64 (padding required, no white space) of in[0..len) into out.
 * Returns false for a character outside the alphabet, bad padding, or outlen too small;
 * otherwise true with the decoded length in *outlen_used.
 */
bool b64_decode(const char *in, size_t len, uint8_t *out, size_t outlen, size_t *outlen_used);

#endif
