/*
 * secrets.c — the file secrets provider: secret_ref → credential values.
 *
 * The secrets file is TOML whose tables are secret refs. It is refused unless it is a
 * regular file (symlinks are not followed), owned by the effective user, with no group
 * or other permission bits (0600 or stricter). Values are copied out on demand and
 * wiped when freed; no value ever appears in an error message.
 */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct lh_secrets {
    lh_toml *doc;
};

/* Open the file without following a link and refuse anything but a regular file of our
 * own that no one else may read or write. */
static int
check_file(const char *path, lh_err *err)
{
    struct stat st;
    int rc = 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == ELOOP) {
        rc = lh_err_set(err, LH_EPERM, 500, "secrets_file_refused",
                        "secrets file is a symbolic link");
        lh_err_detail(err, "%s", path);
        lh_err_hint(err, "point [secrets] file at the real file");
    } else if (fd < 0) {
        int e = errno;
        rc = lh_err_set(err, e == ENOENT ? LH_ENOTFOUND : LH_EIO, 500, "secrets_file_unreadable",
                        "could not open secrets file");
        lh_err_detail(err, "%s: %s", path, strerror(e));
        lh_err_hint(err, "create it with mode 0600 or set [secrets] file");
    } else if (fstat(fd, &st) != 0) {
        rc = lh_err_set(err, LH_EIO, 500, "secrets_file_unreadable", "could not stat secrets file");
        lh_err_detail(err, "%s: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        rc = lh_err_set(err, LH_EPERM, 500, "secrets_file_refused",
                        "secrets file is not a regular file");
        lh_err_detail(err, "%s", path);
    } else if (st.st_uid != geteuid()) {
        rc = lh_err_set(err, LH_EPERM, 500, "secrets_file_refused",
                        "secrets file is not owned by the server's user");
        lh_err_detail(err, "%s is owned by uid %u, the server runs as uid %u", path,
                      (unsigned)st.st_uid, (unsigned)geteuid());
        lh_err_hint(err, "chown it to the server's user");
    } else if ((st.st_mode & 077) != 0) {
        rc = lh_err_set(err, LH_EPERM, 500, "secrets_file_refused",
                        "secrets file is readable or writable by others");
        lh_err_detail(err, "%s has mode %04o", path, (unsigned)(st.st_mode & 07777));
        lh_err_hint(err, "chmod 600 %s", path);
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Parse the checked file. Reading by path again is safe from a swap only in a directory
 * the attacker cannot write; check_file already requires our own file. No error quotes
 * the file's text. */
static int
parse_file(const char *path, lh_toml **doc, lh_err *err)
{
    lh_err perr;
    lh_err_clear(&perr);
    if (lh_toml_parse_file(path, doc, &perr) == 0)
        return 0;
    if (strcmp(perr.code, "invalid_toml") != 0) {
        /* could not read it: the message names the file and the system error */
        lh_err_set(err, perr.rc, 500, "secrets_file_unreadable", "could not read secrets file");
        lh_err_detail(err, "%s", perr.message);
        return perr.rc;
    }
    /* The parser's description can quote the text where it stopped (an unquoted value, a
     * pasted secret read as a key), so keep only "path:line:col". */
    int line = 0, col = 0;
    size_t n = strlen(path);
    lh_err_set(err, LH_EINVAL, 500, "secrets_file_invalid", "secrets file is not valid TOML");
    if (strncmp(perr.message, path, n) == 0 &&
        sscanf(perr.message + n, ":%d:%d:", &line, &col) == 2)
        lh_err_detail(err, "%s:%d:%d", path, line, col);
    else
        lh_err_detail(err, "%s", path);
    lh_err_hint(err, "fix the TOML syntax at that line and column (the parser's description "
                     "is not shown because it could quote a secret)");
    return LH_EINVAL;
}

int
lh_secrets_open(const char *path, lh_secrets **out, lh_err *err)
{
    lh_toml *doc = NULL;
    int rc = 0;
    if ((rc = check_file(path, err)) != 0 || (rc = parse_file(path, &doc, err)) != 0)
        return rc;
    lh_secrets *s = lh_calloc(1, sizeof *s);
    s->doc = doc;
    *out = s;
    return 0;
}

void
lh_secrets_free(lh_secrets *s)
{
    if (s == NULL)
        return;
    lh_toml_wipe(s->doc);
    lh_toml_free(s->doc);
    free(s);
}

bool
lh_secrets_has(const lh_secrets *s, const char *ref)
{
    const lh_toml *t = lh_toml_get(s->doc, ref);
    return t && lh_toml_type_of(t) == LH_TOML_TABLE;
}

int
lh_secrets_get(const lh_secrets *s, const char *ref, const char *field, char **out, lh_err *err)
{
    const lh_toml *t = lh_toml_get(s->doc, ref);
    if (t == NULL || lh_toml_type_of(t) != LH_TOML_TABLE) {
        lh_err_set(err, LH_ENOTFOUND, 500, "secret_not_found", "secret_ref '%s' is not defined",
                   ref);
        lh_err_hint(err, "add a [%s] table to the secrets file", ref);
        return LH_ENOTFOUND;
    }
    const lh_toml *v = lh_toml_get(t, field);
    if (v == NULL || lh_toml_type_of(v) != LH_TOML_STRING) {
        lh_err_set(err, LH_ENOTFOUND, 500, "secret_not_found",
                   "secret_ref '%s' has no string field '%s'", ref, field);
        return LH_ENOTFOUND;
    }
    *out = lh_strdup(lh_toml_str(v));
    return 0;
}
