/*
 * schema_format.c — the "format" values the validator asserts: date and date-time
 * (RFC 3339 section 5.6), email (RFC 5321 Mailbox) and uuid (RFC 4122 text form). Any
 * other format name is an annotation: accepted and not checked, as draft 2020-12's
 * format-annotation vocabulary has it.
 *
 * Pure functions of their input; thread-safe.
 */
#include "agent/schema_int.h"

#include <arpa/inet.h>
#include <string.h>

lh_schema_format
lh_schema__format_kind(const char *name)
{
    if (strcmp(name, "date") == 0)
        return LH_SF_DATE;
    if (strcmp(name, "date-time") == 0)
        return LH_SF_DATE_TIME;
    if (strcmp(name, "email") == 0)
        return LH_SF_EMAIL;
    if (strcmp(name, "uuid") == 0)
        return LH_SF_UUID;
    return LH_SF_NONE;
}

const char *
lh_schema__format_describe(lh_schema_format kind)
{
    switch (kind) {
    case LH_SF_DATE:
        return "a date (RFC 3339 full-date, e.g. 2024-01-31)";
    case LH_SF_DATE_TIME:
        return "a date-time (RFC 3339, e.g. 2024-01-31T09:30:00Z)";
    case LH_SF_EMAIL:
        return "an email address (e.g. name@example.com)";
    case LH_SF_UUID:
        return "a UUID (e.g. 123e4567-e89b-12d3-a456-426614174000)";
    default:
        return "valid";
    }
}

/* ---------------------------------------------------------------------------------
 * RFC 3339
 * ------------------------------------------------------------------------------- */

/* n ASCII digits at s as a number, or -1. */
static int
digits(const char *s, int n)
{
    int v = 0;
    for (int k = 0; k < n; k++) {
        if (s[k] < '0' || s[k] > '9')
            return -1;
        v = v * 10 + (s[k] - '0');
    }
    return v;
}

static int
days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

/* full-date = YYYY-MM-DD, exactly 10 bytes. */
static bool
full_date(const char *s, size_t len)
{
    if (len != 10 || s[4] != '-' || s[7] != '-')
        return false;
    int year = digits(s, 4), month = digits(s + 5, 2), day = digits(s + 8, 2);
    if (year < 0 || month < 1 || month > 12 || day < 1)
        return false;
    return day <= days_in_month(year, month);
}

/* full-time = HH:MM:SS[.frac](Z|+HH:MM|-HH:MM). A leap second (:60) is valid only where
 * it can happen: at 23:59:60 UTC, i.e. the local time less the offset. */
static bool
full_time(const char *s, size_t len)
{
    if (len < 9 || s[2] != ':' || s[5] != ':')
        return false;
    int hour = digits(s, 2), minute = digits(s + 3, 2), second = digits(s + 6, 2);
    if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 60)
        return false;
    size_t k = 8;
    if (s[k] == '.') {
        size_t start = ++k;
        while (k < len && s[k] >= '0' && s[k] <= '9')
            k++;
        if (k == start)
            return false;
    }
    int offset_minutes = 0;
    if (k < len && (s[k] == 'Z' || s[k] == 'z')) {
        k++;
    } else if (k < len && (s[k] == '+' || s[k] == '-')) {
        if (len - k != 6 || s[k + 3] != ':')
            return false;
        int oh = digits(s + k + 1, 2), om = digits(s + k + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return false;
        offset_minutes = (s[k] == '+' ? 1 : -1) * (oh * 60 + om);
        k += 6;
    } else {
        return false;
    }
    if (k != len)
        return false;
    if (second == 60) {
        int utc = ((hour * 60 + minute - offset_minutes) % 1440 + 1440) % 1440;
        return utc == 23 * 60 + 59;
    }
    return true;
}

static bool
date_time(const char *s, size_t len)
{
    if (len < 20 || (s[10] != 'T' && s[10] != 't'))
        return false;
    return full_date(s, 10) && full_time(s + 11, len - 11);
}

/* ---------------------------------------------------------------------------------
 * RFC 5321 Mailbox: Local-part "@" ( Domain / address-literal )
 * ------------------------------------------------------------------------------- */

static bool
is_atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL) || c >= 0x80; /* RFC 6531 */
}

/* Dot-string: atoms of atext joined by single dots. */
static bool
dot_string(const char *s, size_t len)
{
    if (len == 0 || s[0] == '.' || s[len - 1] == '.')
        return false;
    for (size_t k = 0; k < len; k++) {
        if (s[k] == '.' ? s[k + 1] == '.' : !is_atext((unsigned char)s[k]))
            return false;
    }
    return true;
}

/* Quoted-string: DQUOTE *(printable but \ and " | \ printable) DQUOTE. */
static bool
quoted_string(const char *s, size_t len)
{
    if (len < 2 || s[0] != '"' || s[len - 1] != '"')
        return false;
    for (size_t k = 1; k + 1 < len; k++) {
        unsigned char c = (unsigned char)s[k];
        if (c == '\\') {
            if (++k + 1 >= len || (unsigned char)s[k] < 32 || (unsigned char)s[k] == 127)
                return false;
        } else if (c == '"' || c < 32 || c == 127) {
            return false;
        }
    }
    return true;
}

/* A hostname: labels of letters, digits and inner hyphens, 1-63 bytes, 253 in all. */
static bool
hostname(const char *s, size_t len)
{
    if (len == 0 || len > 253)
        return false;
    size_t label = 0;
    for (size_t k = 0; k <= len; k++) {
        if (k == len || s[k] == '.') {
            if (label == 0 || label > 63 || s[k - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        unsigned char c = (unsigned char)s[k];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (c == '-' && label > 0) || c >= 0x80;
        if (!ok)
            return false;
        label++;
    }
    return true;
}

static bool
address_literal(const char *s, size_t len)
{
    char text[64];
    unsigned char addr[16];
    if (len < 3 || len - 2 >= sizeof text || s[0] != '[' || s[len - 1] != ']')
        return false;
    memcpy(text, s + 1, len - 2);
    text[len - 2] = '\0';
    if (strncmp(text, "IPv6:", 5) == 0)
        return inet_pton(AF_INET6, text + 5, addr) == 1;
    return inet_pton(AF_INET, text, addr) == 1;
}

static bool
email(const char *s, size_t len)
{
    if (memchr(s, '\0', len) != NULL)
        return false;
    const char *at = NULL;
    for (size_t k = len; k > 0; k--) /* the last '@': a quoted local part may hold one */
        if (s[k - 1] == '@') {
            at = s + k - 1;
            break;
        }
    if (at == NULL)
        return false;
    size_t local = (size_t)(at - s), domain = len - local - 1;
    if (!dot_string(s, local) && !quoted_string(s, local))
        return false;
    return hostname(at + 1, domain) || address_literal(at + 1, domain);
}

/* ---------------------------------------------------------------------------------
 * UUID: 8-4-4-4-12 hex digits, any case, any version.
 * ------------------------------------------------------------------------------- */

static bool
uuid(const char *s, size_t len)
{
    if (len != 36)
        return false;
    for (size_t k = 0; k < len; k++) {
        char c = s[k];
        bool dash = k == 8 || k == 13 || k == 18 || k == 23;
        bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (dash ? c != '-' : !hex)
            return false;
    }
    return true;
}

bool
lh_schema__format_check(lh_schema_format kind, const char *text, size_t len)
{
    switch (kind) {
    case LH_SF_DATE:
        return full_date(text, len);
    case LH_SF_DATE_TIME:
        return date_time(text, len);
    case LH_SF_EMAIL:
        return email(text, len);
    case LH_SF_UUID:
        return uuid(text, len);
    default:
        return true;
    }
}
