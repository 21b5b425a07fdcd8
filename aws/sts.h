/*
 * sts.h - AWS STS: AssumeRoleWithWebIdentity (unsigned: the web identity token is the proof)
 * and the parsers for its XML answers and STS's error XML. The parsers are pure; aws_sts_*_call
 * do the HTTPS exchange (blocking: provider thread only).
 */
#ifndef KB_AWS_STS_H
#define KB_AWS_STS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "aws/creds.h"

/* An STS <ErrorResponse>: <Error><Type/><Code/><Message/></Error>. */
struct aws_sts_error {
    char code[128];    /* "AccessDenied", "InvalidIdentityToken", ... */
    char message[768]; /* STS's own words (never contains a secret) */
};

/*
 * Text of the first <tag>...</tag> inside the first <scope>...</scope> of xml (scope NULL: the
 * whole document), entities decoded (&amp; &lt; &gt; &quot; &apos; &#N; &#xN;), into out.
 * false when absent, malformed or longer than outlen - 1.
 */
bool aws_xml_text(const char *xml, size_t len, const char *scope, const char *tag, char *out,
                  size_t outlen) KB_MUSTCHECK;

/*
 * An AssumeRoleWithWebIdentityResponse (or AssumeRoleResponse): Credentials/AccessKeyId,
 * SecretAccessKey, SessionToken, Expiration and AssumedRoleUser/Arn into out (source left as
 * is). false with what is missing in err.
 */
bool aws_sts_parse_credentials(const char *xml, size_t len, struct aws_creds *out, char *err,
                               size_t errlen) KB_MUSTCHECK;

/* An ErrorResponse's Code and Message; false when xml is not one. */
bool aws_sts_parse_error(const char *xml, size_t len, struct aws_sts_error *e) KB_MUSTCHECK;

/* GetCallerIdentityResponse: Arn and Account. false when absent. */
bool aws_sts_parse_caller_identity(const char *xml, size_t len, char *arn, size_t arnlen,
                                   char *account, size_t accountlen) KB_MUSTCHECK;

/*
 * The cause and the fix for an STS error, into out: STS's code and message, then a hint for the
 * codes an operator can act on (AccessDenied: the role's trust policy; InvalidIdentityToken:
 * the token's issuer, audience and subject; ExpiredTokenException; RegionDisabledException).
 * what names the call ("AssumeRoleWithWebIdentity for arn:..."), audience may be NULL.
 */
void aws_sts_explain(const struct aws_sts_error *e, long status, const char *what,
                     const char *audience, char *out, size_t outlen);

/*
 * POSTs AssumeRoleWithWebIdentity for s->role_arn / s->session_name with token to
 * s->sts_endpoint; fills out (source left as is) and *date (the answer's Date, 0 if none).
 * false with the cause and the fix in err.
 */
bool aws_sts_assume_role_with_web_identity(const struct aws_settings *s, const char *token,
                                           struct aws_creds *out, time_t *date, char *err,
                                           size_t errlen) KB_MUSTCHECK;

/*
 * Who c is: STS GetCallerIdentity, signed with SigV4 (service "sts", s->region), POSTed to
 * s->sts_endpoint. Fills arn (for an assumed role "arn:aws:sts::ACCOUNT:assumed-role/ROLE/
 * SESSION") and account, and *date. false with STS's code and message, or the transport error,
 * in err. Blocking: for `kbridge check` and tools, never an event loop.
 */
bool aws_sts_get_caller_identity(const struct aws_settings *s, const struct aws_creds *c, char *arn,
                                 size_t arnlen, char *account, size_t accountlen, time_t *date,
                                 char *err, size_t errlen) KB_MUSTCHECK;

/*
 * The "host" header value for url as HTTP clients send it ("host" or "host:port", default ports
 * dropped), and its path ("/" when none), into host and path. false when url is not http(s).
 */
bool aws_sts_url_parts(const char *url, char *host, size_t hostlen, char *path,
                       size_t pathlen) KB_MUSTCHECK;

#endif
