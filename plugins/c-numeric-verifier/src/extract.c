/*
 * extract.c: the final numeric answer of a free-text math solution.
 *
 * Rules, in order (the same precedence as the Rust gsm8k-verifier's final answer):
 *   1. the last `#### N` (GSM8K's own answer marker),
 *   2. else the last "answer is N" / "answer: N" / "answer = N" (any case),
 *   3. else the last number anywhere in the text.
 * A number is `-`? `$`? digits with optional thousands separators (`,` followed by exactly
 * three digits) and decimals (`.` followed by digits), or `.5`; `-$5` and `$-5` are both
 * negative. Careful rather than greedy where prose is ambiguous:
 *   - `-` is a sign only when not glued to a letter or digit ("3-5" holds 3 and 5),
 *   - `,` is a separator only before exactly three digits ("1,2,3" is three numbers),
 *   - a trailing `.` ends a sentence, not a decimal ("is 18." is 18).
 * Everything is linear in the text's length and allocation-free (1 MB candidates are fine).
 */
#include "extract.h"

#include <math.h>

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static bool is_alnum(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static char lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c; }

/* Exact powers of ten up to 1e22 (the largest a double holds exactly). */
static double pow10_of(size_t n) {
    static const double exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    return n < sizeof exact / sizeof exact[0] ? exact[n] : pow(10.0, (double)n);
}

/*
 * Reads a number starting exactly at `i` (a sign, `$`, digit or `.`). On success sets
 * [*start, *end) and *value. Digits accumulate into an integer mantissa divided once by a
 * power of ten, which gives the correctly rounded value for up to 15 significant digits
 * (every GSM8K answer) and a close one beyond.
 */
static bool number_at(const char *t, size_t len, size_t i, size_t *end, double *value) {
    size_t p = i;
    bool negative = false;
    /* A sign glued to a word or digit is a hyphen or a minus between operands. */
    if (p < len && t[p] == '-' && (p == 0 || !is_alnum(t[p - 1]))) {
        negative = true;
        p++;
    }
    if (p < len && t[p] == '$') {
        p++;
        if (!negative && p < len && t[p] == '-') {
            negative = true;
            p++;
        }
    }
    double mantissa = 0;
    size_t int_digits = 0, frac_digits = 0;
    while (p < len && is_digit(t[p])) {
        mantissa = mantissa * 10 + (t[p] - '0');
        int_digits++;
        p++;
        /* Thousands separator: `,` and exactly three digits, then no fourth digit. */
        if (p + 3 < len && t[p] == ',' && is_digit(t[p + 1]) && is_digit(t[p + 2]) && is_digit(t[p + 3]) &&
            (p + 4 == len || !is_digit(t[p + 4]))) {
            p++;
        }
    }
    if (p + 1 < len && t[p] == '.' && is_digit(t[p + 1])) {
        p++;
        while (p < len && is_digit(t[p])) {
            mantissa = mantissa * 10 + (t[p] - '0');
            frac_digits++;
            p++;
        }
    }
    if (int_digits == 0 && frac_digits == 0) {
        return false;
    }
    double v = frac_digits ? mantissa / pow10_of(frac_digits) : mantissa;
    *value = negative ? -v : v;
    *end = p;
    return true;
}

/* The first number at or after `p` once whitespace, one `:`/`=` and a `$` are skipped,
 * as in "answer is: $ 1,200". */
static bool number_after(const char *t, size_t len, size_t p, bool allow_colon, size_t *start, size_t *end, double *value) {
    while (p < len && is_space(t[p])) {
        p++;
    }
    if (allow_colon && p < len && (t[p] == ':' || t[p] == '=')) {
        p++;
        while (p < len && is_space(t[p])) {
            p++;
        }
    }
    /* "$ 12" (a space after the dollar sign) reads as $12. */
    if (p < len && t[p] == '$') {
        size_t q = p + 1;
        while (q < len && is_space(t[q])) {
            q++;
        }
        if (q < len && (is_digit(t[q]) || t[q] == '-' || t[q] == '.')) {
            p = q;
        }
    }
    *start = p;
    return p < len && number_at(t, len, p, end, value);
}

static bool match_ci(const char *t, size_t len, size_t p, const char *word) {
    for (size_t k = 0; word[k]; k++) {
        if (p + k >= len || lower(t[p + k]) != word[k]) {
            return false;
        }
    }
    return true;
}

bool numeric_final_answer(const char *text, size_t len, numeric_answer_t *out) {
    bool marker = false, phrase = false, any = false;
    numeric_answer_t m = {0}, ph = {0}, last = {0};
    for (size_t p = 0; p < len; p++) {
        char c = text[p];
        size_t start, end;
        double value;
        if (c == '#' && p + 4 <= len && text[p + 1] == '#' && text[p + 2] == '#' && text[p + 3] == '#' &&
            number_after(text, len, p + 4, false, &start, &end, &value)) {
            m = (numeric_answer_t){value, NUMERIC_RULE_MARKER, start, end};
            marker = true;
        }
        if ((c == 'a' || c == 'A') && match_ci(text, len, p, "answer")) {
            size_t q = p + 6, r = q;
            /* "answer is N" first, then "answer N" / "answer: N". */
            while (r < len && is_space(text[r])) {
                r++;
            }
            bool found = false;
            if (r > q && match_ci(text, len, r, "is")) {
                found = number_after(text, len, r + 2, true, &start, &end, &value);
            }
            if (!found) {
                found = number_after(text, len, q, true, &start, &end, &value);
            }
            if (found) {
                ph = (numeric_answer_t){value, NUMERIC_RULE_PHRASE, start, end};
                phrase = true;
            }
        }
        /* Numbers are maximal and the scan resumes after each, so it never starts inside
         * one. */
        if ((is_digit(c) || c == '-' || c == '$' || c == '.') && number_at(text, len, p, &end, &value)) {
            last = (numeric_answer_t){value, NUMERIC_RULE_LAST_NUMBER, p, end};
            any = true;
            p = end - 1;
        }
    }
    if (marker) {
        *out = m;
    } else if (phrase) {
        *out = ph;
    } else if (any) {
        *out = last;
    } else {
        return false;
    }
    return true;
}

bool numeric_parse(const char *text, size_t len, double *out) {
    size_t start = 0, end = len;
    while (start < end && is_space(text[start])) {
        start++;
    }
    while (end > start && is_space(text[end - 1])) {
        end--;
    }
    size_t stop;
    double value;
    if (start == end || !number_at(text, end, start, &stop, &value)) {
        return false;
    }
    /* Nothing may follow but one sentence-ending period. */
    if (stop != end && !(stop + 1 == end && text[stop] == '.')) {
        return false;
    }
    *out = value;
    return true;
}

const char *numeric_rule_name(numeric_rule_t rule) {
    switch (rule) {
    case NUMERIC_RULE_MARKER:
        return "marker";
    case NUMERIC_RULE_PHRASE:
        return "answer-phrase";
    default:
        return "last-number";
    }
}
