/*
 * profile.h - the AWS shared files: ~/.aws/credentials ([NAME]) and ~/.aws/config
 * ([profile NAME], [default]). Static keys only; a profile that would need another source
 * (role_arn + source_profile, SSO, credential_process, web_identity_token_file) is named as not
 * supported, so the operator knows why it gave nothing. Parsing is pure; aws_profile_load reads.
 */
#ifndef KB_AWS_PROFILE_H
#define KB_AWS_PROFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "aws/creds.h"

/* What one file says about one profile. */
struct aws_profile_values {
    bool found;             /* the profile's section exists */
    bool has_key_id;        /* aws_access_key_id set */
    bool has_secret;        /* aws_secret_access_key set */
    struct aws_creds creds; /* key id, secret, session token (aws_session_token) */
    char unsupported[64];   /* first key of an unsupported kind, "" if none */
};

/*
 * Parses text (a whole file, len bytes) for profile: in a config file (config_file true) the
 * section is "[profile NAME]", or "[default]" for "default"; in the credentials file "[NAME]".
 * Comments start with '#' or ';' at the start of a line; keys and values are trimmed; later
 * values of a key win; an indented line continues a nested value and is ignored. Fills *out
 * (wipe it with aws_creds_clear(&out->creds)).
 */
void aws_profile_parse(const char *text, size_t len, const char *profile, bool config_file,
                       struct aws_profile_values *out);

/*
 * The profile s->profile from AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials), then
 * AWS_CONFIG_FILE (default ~/.aws/config); the credentials file's keys win. A file that does not
 * exist is "none", an unreadable one is "failed".
 */
enum aws_source_result aws_profile_load(const struct aws_settings *s, struct aws_creds *out,
                                        char *why, size_t whylen);

#endif
