/*
 * secret.h - the SASL credential one cluster section names with sasl_password_file: the
 * file's first line is the password, or the whole file is AWS Secrets Manager's JSON form
 * {"username": "...", "password": "..."} (what MSK's SCRAM secrets hold). One struct holds it,
 * nothing prints it, and it is wiped with OPENSSL_cleanse when freed.
 */
#ifndef KB_CONF_SECRET_H
#define KB_CONF_SECRET_H

#include <stdbool.h>
#include <stddef.h>

#ifndef KB_MUSTCHECK
#define KB_MUSTCHECK __attribute__((warn_unused_result))
#endif

#define KB_SECRET_FILE_MAX 65536 /* bytes read at most from a password file */

struct secret {
    char *username;     /* "username" of the JSON form, NULL for the one-line form */
    char *password;     /* never logged or printed; wiped on free; on its own pages, kept
                           out of core dumps (MADV_DONTDUMP) when map_len > 0 */
    size_t map_len;     /* bytes mapped for password, 0 when it is on the heap */
    bool loose_mode;    /* the file is readable by group or others */
    unsigned file_mode; /* its permission bits (st_mode & 0777), for the warning */
};

/*
 * Reads path. The JSON form is chosen when the first byte that is not white space is '{';
 * it must be one object of string values (standard escapes, \uXXXX with surrogate pairs;
 * unknown keys are ignored, duplicate keys refused) with a non-empty "password". Otherwise the
 * first line (without its "\n" or "\r\n") is the password and must not be empty. Returns a
 * secret the caller frees with secret_free(), or NULL with the reason in err ("cannot read it:
 * No such file or directory", "not valid Secrets Manager JSON: ..."), which names neither the
 * path (the caller does) nor any of the file's bytes. The read buffer is wiped before returning.
 * The password, which lives as long as the configuration snapshot, is moved to pages of its
 * own that core dumps leave out (heap if that mapping fails).
 */
struct secret *secret_load(const char *path, char *err, size_t errlen) KB_MUSTCHECK;

/* Wipes and frees s. NULL is fine. */
void secret_free(struct secret *s);

#endif
