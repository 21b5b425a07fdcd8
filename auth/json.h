/*
 * json.h - the one reader for the small flat JSON objects kbridge meets: MSK's SASL answer
 * ({"version": ..., "request-id": ...}) and EC2 instance metadata credentials. Pure, bounded,
 * no allocation. Nested objects and arrays are refused (none of those documents has them).
 */
#ifndef KB_AUTH_JSON_H
#define KB_AUTH_JSON_H

#include <stddef.h>

enum json_result {
    JSON_OK = 0,   /* key found, its string value copied */
    JSON_ABSENT,   /* a well-formed object without key */
    JSON_MALFORMED /* not a flat JSON object, key not a string, or the value too long for out */
};

/*
 * The string value of key in the flat JSON object json[0..len), escapes decoded (\" \\ \/ \b
 * \f \n \r \t, and \uXXXX below 0x80), NUL-terminated into out. The whole object is checked,
 * also past the key. out is "" unless JSON_OK.
 */
enum json_result json_get_string(const char *json, size_t len, const char *key, char *out,
                                 size_t outlen);

#endif
