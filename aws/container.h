/*
 * container.h - the container credentials endpoint of the AWS SDK chain: ECS tasks
 * (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, served by the ECS agent at 169.254.170.2) and EKS Pod
 * Identity or any other agent (AWS_CONTAINER_CREDENTIALS_FULL_URI, with the authorization token
 * from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, re-read on every fetch, or
 * AWS_CONTAINER_AUTHORIZATION_TOKEN). aws_container_url is pure; aws_container_fetch calls out.
 */
#ifndef KB_AWS_CONTAINER_H
#define KB_AWS_CONTAINER_H

#include <stdbool.h>
#include <stddef.h>

#include "aws/creds.h"

#define AWS_CONTAINER_ECS_HOST "http://169.254.170.2"

/*
 * The endpoint the two variables name: RELATIVE_URI (when set, it wins, as in the SDKs) is a path
 * on the ECS agent; FULL_URI must be https://, or http:// to a host the SDKs allow in clear
 * (loopback, 169.254.170.2, 169.254.170.23, [fd00:ec2::23]), since the answer is credentials.
 * NONE when neither is set, FAILED (with the fix in why) for a URI that is not allowed.
 */
enum aws_source_result aws_container_url(const char *relative, const char *full, char *url,
                                         size_t urllen, char *why, size_t whylen);

/* GET url (Authorization from the token file or variable, when one is set). false with why. */
bool aws_container_fetch(const char *url, struct aws_creds *out, char *why,
                         size_t whylen) KB_MUSTCHECK;

#endif
