/* Unit tests of logline: step markers, UTF-8-safe cuts and the line encoder
 * (escaping, U+FFFD replacement as Python's errors='replace', the cap). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "ccci/core/util.h"
#include "ccci/logs/logline.h"
#include "logline_ref.h"

#define STR(s) (s), (sizeof(s) - 1)

/* ---- markers ---- */

static void expect_marker(const char *line, size_t len, const char *want)
{
  char name[CCCI_LOGLINE_NAME_MAX + 1];
  memset(name, 'X', sizeof(name));
  assert_int_equal(ccci_logline_marker(line, len, name), 1);
  assert_string_equal(name, want);
}

static void expect_no_marker(const char *line, size_t len)
{
  char name[CCCI_LOGLINE_NAME_MAX + 1];
  memset(name, 'X', sizeof(name));
  assert_int_equal(ccci_logline_marker(line, len, name), 0);
  assert_int_equal(name[0], 'X'); /* untouched */
}

static void test_marker_valid(void **state)
{
  (void)state;
  expect_marker(STR("~~~ step build"), "build");
  expect_marker(STR("~~~ step a"), "a");
  expect_marker(STR("~~~ step 0"), "0");
  expect_marker(STR("~~~ step 9lives"), "9lives");
  expect_marker(STR("~~~ step a.b-c_d"), "a.b-c_d");
  expect_marker(STR("~~~ step x-"), "x-");
  expect_marker(STR("~~~ step install\r"), "install");
  expect_marker(STR("~~~ step abcdefghijklmnopqrstuvwxyz012345"),
                "abcdefghijklmnopqrstuvwxyz012345"); /* 32 */
  expect_marker(STR("~~~ step abcdefghijklmnopqrstuvwxyz012345\r"),
                "abcdefghijklmnopqrstuvwxyz012345");
  /* Only the first @p len bytes count. */
  expect_marker("~~~ step ok\nmore", 11, "ok");
}

static void test_marker_invalid(void **state)
{
  (void)state;
  expect_no_marker(STR("~~~ step abcdefghijklmnopqrstuvwxyz0123456")); /* 33 */
  expect_no_marker(STR("~~~ step Build"));
  expect_no_marker(STR("~~~ step buIld"));
  expect_no_marker(STR("~~~ STEP build"));
  expect_no_marker(STR("~~~ step -x"));
  expect_no_marker(STR("~~~ step .x"));
  expect_no_marker(STR("~~~ step _x"));
  expect_no_marker(STR("~~~ step build "));
  expect_no_marker(STR("~~~ step build\r "));
  expect_no_marker(STR("~~~ step build\r\r"));
  expect_no_marker(STR("~~~ step bu\rild"));
  expect_no_marker(STR("~~~ step"));
  expect_no_marker(STR("~~~ step "));
  expect_no_marker(STR("~~~ step \r"));
  expect_no_marker(STR("~~~ step  build"));
  expect_no_marker(STR("~~~  step build"));
  expect_no_marker(STR("~~~step build"));
  expect_no_marker(STR("~~ step build"));
  expect_no_marker(STR("~~~~ step build"));
  expect_no_marker(STR(" ~~~ step build"));
  expect_no_marker(STR("~~~\tstep build"));
  expect_no_marker(STR("~~~ step\tbuild"));
  expect_no_marker(STR("~~~ step bu ild"));
  expect_no_marker(STR("~~~ step bu/ild"));
  expect_no_marker(STR("~~~ step build\n")); /* given without its '\n' */
  expect_no_marker(STR("~~~ step b\0ld"));
  expect_no_marker(STR("~~~ step caf\xc3\xa9"));
  expect_no_marker(STR(""));
  expect_no_marker(STR("\r"));
}

/* ---- cuts ---- */

static void test_cut_ascii(void **state)
{
  char line[200];
  (void)state;
  memset(line, 'a', sizeof(line));
  assert_int_equal(ccci_logline_cut(line, 0, 100), 0);
  assert_int_equal(ccci_logline_cut(line, 99, 100), 99);
  assert_int_equal(ccci_logline_cut(line, 100, 100), 100); /* exact max */
  assert_int_equal(ccci_logline_cut(line, 101, 100), 100);
  assert_int_equal(ccci_logline_cut(line, 200, 100), 100);
  assert_int_equal(ccci_logline_cut(line, 200, 1), 1);
  assert_int_equal(ccci_logline_cut(line, 200, 0), 1); /* never 0 */
  line[99] = '\n';
  assert_int_equal(ccci_logline_cut(line, 100, 100), 100);
}

static void test_cut_emoji(void **state)
{
  /* U+1F600 is F0 9F 98 80: placed so the limit falls after each byte. */
  static const char emoji[] = "\xf0\x9f\x98\x80";
  char line[32];
  size_t at;
  (void)state;
  for (at = 6; at <= 10; at++) {
    memset(line, 'a', sizeof(line));
    memcpy(line + at, emoji, 4);
    /* The limit is 10: the emoji spans at..at+3. */
    if (at < 10 && at + 4 > 10)
      assert_int_equal(ccci_logline_cut(line, sizeof(line), 10), at);
    else
      assert_int_equal(ccci_logline_cut(line, sizeof(line), 10), 10);
  }
  /* A whole emoji at the end of a fitting line is not cut. */
  memset(line, 'a', sizeof(line));
  memcpy(line + 6, emoji, 4);
  assert_int_equal(ccci_logline_cut(line, 10, 10), 10);
  /* Two- and three-byte sequences too. */
  assert_int_equal(ccci_logline_cut(STR("abc\xc3\xa9"), 4), 3);
  assert_int_equal(ccci_logline_cut(STR("abc\xe2\x82\xac"), 4), 3);
  assert_int_equal(ccci_logline_cut(STR("abc\xe2\x82\xac"), 5), 3);
  assert_int_equal(ccci_logline_cut(STR("abc\xe2\x82\xac!"), 6), 6);
  /* Backing off would leave nothing: cut at max. */
  assert_int_equal(ccci_logline_cut(STR("\xf0\x9f\x98\x80"), 2), 2);
  assert_int_equal(ccci_logline_cut(STR("\xc3\xa9"), 1), 1);
  /* The 64 KiB limit of the log writer. */
  {
    size_t n = CCCI_LOGLINE_MAX + 8;
    char *big = ccci_xmalloc(n);
    memset(big, 'x', n);
    memcpy(big + CCCI_LOGLINE_MAX - 2, emoji, 4);
    assert_int_equal(ccci_logline_cut(big, n, CCCI_LOGLINE_MAX),
                     CCCI_LOGLINE_MAX - 2);
    free(big);
  }
}

static void test_cut_invalid(void **state)
{
  (void)state;
  /* Ill-formed bytes may be cut anywhere. */
  assert_int_equal(ccci_logline_cut(STR("abc\xff\xff\xff"), 4), 4);
  assert_int_equal(ccci_logline_cut(STR("abc\x80\x80\x80\x80"), 5), 5);
  /* A truncated sequence before the limit, ASCII after. */
  assert_int_equal(ccci_logline_cut(STR("abc\xe2\x82zz"), 5), 5);
  assert_int_equal(ccci_logline_cut(STR("abc\xe2\x82zz"), 4), 4);
  /* Surrogates and overlongs are not well-formed: no backing off. */
  assert_int_equal(ccci_logline_cut(STR("abc\xed\xa0\x80"), 4), 4);
  assert_int_equal(ccci_logline_cut(STR("abc\xe0\x80\x80"), 5), 5);
  assert_int_equal(ccci_logline_cut(STR("abc\xf4\x90\x80\x80"), 5), 5);
  assert_int_equal(ccci_logline_cut(STR("abc\xc0\xaf"), 4), 4);
  /* Continuation bytes after a complete sequence are stray. */
  assert_int_equal(ccci_logline_cut(STR("ab\xc3\xa9\x80\x80"), 5), 5);
  /* A lead byte just before the limit with a valid one inside. */
  assert_int_equal(ccci_logline_cut(STR("ab\xe2\xc3\xa9"), 4), 3);
}

/* ---- the encoder ---- */

/* Encode into a fresh uncapped buffer and compare with @p want. */
static void expect_line(uint64_t pos, const char *text, size_t len, uint64_t t,
                        const char *want)
{
  struct ccci_buf b;
  ccci_buf_init(&b, SIZE_MAX / 2);
  assert_int_equal(ccci_logline_encode(&b, pos, text, len, t), 0);
  assert_int_equal(b.len, strlen(want));
  assert_memory_equal(b.data, want, b.len);
  assert_int_equal(b.data[b.len], '\0');
  ccci_buf_close(&b);
}

/* The `out` part of the encoding of @p len bytes at @p text, in @p out. */
static void encode_out(const char *text, size_t len, struct ccci_buf *out)
{
  struct ccci_buf b;
  static const char pre[] = "{\"pos\":0,\"out\":\"";
  static const char post[] = "\",\"time\":0}\n";
  ccci_buf_init(&b, SIZE_MAX / 2);
  assert_int_equal(ccci_logline_encode(&b, 0, text, len, 0), 0);
  assert_true(b.len >= sizeof(pre) - 1 + sizeof(post) - 1);
  assert_memory_equal(b.data, pre, sizeof(pre) - 1);
  assert_memory_equal(b.data + b.len - (sizeof(post) - 1), post,
                      sizeof(post) - 1);
  ccci_buf_init(out, SIZE_MAX / 2);
  assert_int_equal(
      ccci_buf_append(out, b.data + sizeof(pre) - 1,
                      b.len - (sizeof(pre) - 1) - (sizeof(post) - 1)),
      0);
  ccci_buf_close(&b);
}

static void expect_out(const char *text, size_t len, const char *want,
                       size_t want_len)
{
  struct ccci_buf out;
  encode_out(text, len, &out);
  assert_int_equal(out.len, want_len);
  assert_memory_equal(out.data, want, want_len);
  ccci_buf_close(&out);
}

static void test_encode_frame(void **state)
{
  (void)state;
  expect_line(0, STR("hello\n"), 0,
              "{\"pos\":0,\"out\":\"hello\\n\",\"time\":0}\n");
  expect_line(42, STR(""), 7, "{\"pos\":42,\"out\":\"\",\"time\":7}\n");
  expect_line(UINT64_MAX, STR("x"), UINT64_MAX,
              "{\"pos\":18446744073709551615,\"out\":\"x\",\"time\":"
              "18446744073709551615}\n");
  expect_line(1000000, NULL, 0, 10,
              "{\"pos\":1000000,\"out\":\"\",\"time\":10}\n");
}

static void test_encode_appends(void **state)
{
  struct ccci_buf b;
  (void)state;
  ccci_buf_init(&b, 4096);
  assert_int_equal(ccci_buf_append(&b, STR("prior")), 0);
  assert_int_equal(ccci_logline_encode(&b, 0, STR("a\n"), 1), 0);
  assert_int_equal(ccci_logline_encode(&b, 1, STR("b"), 2), 0);
  assert_string_equal(b.data, "prior{\"pos\":0,\"out\":\"a\\n\",\"time\":1}\n"
                              "{\"pos\":1,\"out\":\"b\",\"time\":2}\n");
  ccci_buf_close(&b);
}

/* Every ASCII byte, alone and inside a run long enough for the word-wise
 * fast path, at every alignment. */
static void test_encode_ascii_escapes(void **state)
{
  char want[8], in[40];
  struct ccci_buf out;
  size_t wl, at;
  int c;
  (void)state;
  for (c = 0; c < 0x80; c++) {
    switch (c) {
    case '"':
      wl = 2, memcpy(want, "\\\"", 2);
      break;
    case '\\':
      wl = 2, memcpy(want, "\\\\", 2);
      break;
    case '\b':
      wl = 2, memcpy(want, "\\b", 2);
      break;
    case '\f':
      wl = 2, memcpy(want, "\\f", 2);
      break;
    case '\n':
      wl = 2, memcpy(want, "\\n", 2);
      break;
    case '\r':
      wl = 2, memcpy(want, "\\r", 2);
      break;
    case '\t':
      wl = 2, memcpy(want, "\\t", 2);
      break;
    default:
      if (c < 0x20 || c == 0x7f) {
        static const char hx[] = "0123456789abcdef";
        memcpy(want, "\\u00", 4);
        want[4] = hx[c >> 4];
        want[5] = hx[c & 15];
        wl = 6;
      } else {
        want[0] = (char)c;
        wl = 1;
      }
    }
    in[0] = (char)c;
    expect_out(in, 1, want, wl);
    for (at = 0; at < 24; at++) {
      memset(in, 'k', sizeof(in));
      in[at] = (char)c;
      encode_out(in, sizeof(in), &out);
      assert_int_equal(out.len, sizeof(in) - 1 + wl);
      assert_memory_equal(out.data + at, want, wl);
      ccci_buf_close(&out);
    }
  }
}

static void test_encode_c1(void **state)
{
  char in[2], want[7];
  int c;
  (void)state;
  for (c = 0x80; c <= 0xff; c++) {
    in[0] = (char)(0xc0 | (c >> 6));
    in[1] = (char)(0x80 | (c & 0x3f));
    if (c <= 0x9f) {
      memcpy(want, "\\u00", 4);
      want[4] = "0123456789abcdef"[c >> 4];
      want[5] = "0123456789abcdef"[c & 15];
      expect_out(in, 2, want, 6);
    } else {
      expect_out(in, 2, in, 2); /* raw */
    }
  }
  expect_out(STR("\xc2\x80"), STR("\\u0080"));
  expect_out(STR("\xc2\x9f"), STR("\\u009f"));
  expect_out(STR("\xc2\xa0"), STR("\xc2\xa0"));
  /* U+2028 and U+2029 stay raw (valid JSON, if not valid JavaScript). */
  expect_out(STR("\xe2\x80\xa8\xe2\x80\xa9"), STR("\xe2\x80\xa8\xe2\x80\xa9"));
}

static void test_encode_replacement(void **state)
{
  (void)state;
  expect_out(STR("\xe2\x82"), STR("\xef\xbf\xbd"));
  expect_out(STR("\xe2\x82"
                 "A"),
             STR("\xef\xbf\xbd"
                 "A"));
  expect_out(STR("\xff\xfe"), STR("\xef\xbf\xbd\xef\xbf\xbd"));
  expect_out(STR("\xed\xa0\x80"), STR("\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"));
  expect_out(STR("\xc0\xaf"), STR("\xef\xbf\xbd\xef\xbf\xbd"));
  expect_out(STR("\xf4\x90\x80\x80"),
             STR("\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"));
  /* U+FFFD in the input is valid and stays as it is. */
  expect_out(STR("\xef\xbf\xbd"), STR("\xef\xbf\xbd"));
}

static void test_encode_ansi(void **state)
{
  (void)state;
  expect_out(STR("\x1b[31mred\x1b[0m"), STR("\\u001b[31mred\\u001b[0m"));
  expect_line(3, STR("\x1b[1;32mok\x1b[0m\r\n"), 1,
              "{\"pos\":3,\"out\":\"\\u001b[1;32mok\\u001b[0m\\r\\n\",\"time\":"
              "1}\n");
}

/* Expected encodings computed by Python: for each input,
 * esc(input.decode('utf-8', 'replace')) with the escaping rules above. */
static const struct {
  const char *in;
  size_t len;
  const char *out;
} python_table[] = {
    {"", 0, ""},                                 /* '' */
    {"hello\012", 6, "hello\\n"},                /* 'hello\n' */
    {"\342\202", 2, "\357\277\275"},             /* '\ufffd' */
    {"\342\202A", 3, "\357\277\275A"},           /* '\ufffdA' */
    {"\377\376", 2, "\357\277\275\357\277\275"}, /* '\ufffd\ufffd' */
    {"\355\240\200", 3,
     "\357\277\275\357\277\275\357\277\275"},    /* '\ufffd\ufffd\ufffd' */
    {"\300\257", 2, "\357\277\275\357\277\275"}, /* '\ufffd\ufffd' */
    {"\364\220\200\200", 4,
     "\357\277\275\357\277\275\357\277\275\357\277\275"}, /* '\ufffd\ufffd\ufffd\ufffd'
                                                           */
    {"\360\237\230\200", 4, "\360\237\230\200"},          /* '\U0001f600' */
    {"\360\237\230", 3, "\357\277\275"},                  /* '\ufffd' */
    {"\360\237\230A", 4, "\357\277\275A"},                /* '\ufffdA' */
    {"\360\200\200\200", 4,
     "\357\277\275\357\277\275\357\277\275\357\277\275"}, /* '\ufffd\ufffd\ufffd\ufffd'
                                                           */
    {"\340\200\200", 3,
     "\357\277\275\357\277\275\357\277\275"}, /* '\ufffd\ufffd\ufffd' */
    {"\340\240\200", 3, "\340\240\200"},      /* '\u0800' */
    {"\302\200", 2, "\\u0080"},               /* '\x80' */
    {"\302\237", 2, "\\u009f"},               /* '\x9f' */
    {"\302\240", 2, "\302\240"},              /* '\xa0' */
    {"\342\200\250\342\200\251", 6,
     "\342\200\250\342\200\251"}, /* '\u2028\u2029' */
    {"\200", 1, "\357\277\275"},  /* '\ufffd' */
    {"\200\200\200\200\200", 5,
     "\357\277\275\357\277\275\357\277\275\357\277\275\357\277\275"}, /* '\ufffd\ufffd\ufffd\ufffd\ufffd'
                                                                       */
    {"\301\277", 2, "\357\277\275\357\277\275"}, /* '\ufffd\ufffd' */
    {"\365\200\200\200", 4,
     "\357\277\275\357\277\275\357\277\275\357\277\275"}, /* '\ufffd\ufffd\ufffd\ufffd'
                                                           */
    {"\370\210\200\200\200", 5,
     "\357\277\275\357\277\275\357\277\275\357\277\275\357\277\275"}, /* '\ufffd\ufffd\ufffd\ufffd\ufffd'
                                                                       */
    {"\374\204\200\200\200\200", 6,
     "\357\277\275\357\277\275\357\277\275\357\277\275\357\277\275\357\277"
     "\275"}, /* '\ufffd\ufffd\ufffd\ufffd\ufffd\ufffd' */
    {"\357\277\275", 3, "\357\277\275"},         /* '\ufffd' */
    {"\357\277\277", 3, "\357\277\277"},         /* '\uffff' */
    {"\355\237\277", 3, "\355\237\277"},         /* '\ud7ff' */
    {"\356\200\200", 3, "\356\200\200"},         /* '\ue000' */
    {"\364\217\277\277", 4, "\364\217\277\277"}, /* '\U0010ffff' */
    {"\355\277\277", 3,
     "\357\277\275\357\277\275\357\277\275"}, /* '\ufffd\ufffd\ufffd' */
    {"a\000b", 3, "a\\u0000b"},               /* 'a\x00b' */
    {"\033[31mred\033[0m", 12,
     "\\u001b[31mred\\u001b[0m"}, /* '\x1b[31mred\x1b[0m' */
    {"\"quoted\" \\back\\", 15,
     "\\\"quoted\\\" \\\\back\\\\"},                /* '"quoted" \\back\\' */
    {"\010\014\012\015\011", 5, "\\b\\f\\n\\r\\t"}, /* '\x08\x0c\n\r\t' */
    {"\001\037\177", 3, "\\u0001\\u001f\\u007f"},   /* '\x01\x1f\x7f' */
    {"\342\202\254", 3, "\342\202\254"},            /* '\u20ac' */
    {"\342\342\202\254", 4, "\357\277\275\342\202\254"}, /* '\ufffd\u20ac' */
    {"\303", 1, "\357\277\275"},                         /* '\ufffd' */
    {"\303\251\303", 3, "\303\251\357\277\275"},         /* '\xe9\ufffd' */
    {"\361\200\200", 3, "\357\277\275"},                 /* '\ufffd' */
    {"\361\200\200\361\200\200\200", 7,
     "\357\277\275\361\200\200\200"}, /* '\ufffd\U00040000' */
    {"/ </script> \342\200\213", 15,
     "/ </script> \342\200\213"}, /* '/ </script> \u200b' */
    {"0123456789abcdef\"0123456789", 27,
     "0123456789abcdef\\\"0123456789"}, /* '0123456789abcdef"0123456789' */
    {"\340\237\200", 3,
     "\357\277\275\357\277\275\357\277\275"}, /* '\ufffd\ufffd\ufffd' */
    {"\360\217\277\277", 4,
     "\357\277\275\357\277\275\357\277\275\357\277\275"}, /* '\ufffd\ufffd\ufffd\ufffd'
                                                           */
    {"\364\217\277", 3, "\357\277\275"},                  /* '\ufffd' */
    {"\337\277\337", 3, "\337\277\357\277\275"},          /* '\u07ff\ufffd' */
    {"\302\177", 2, "\357\277\275\\u007f"},               /* '\ufffd\x7f' */
    {"\302\302\200", 3, "\357\277\275\\u0080"},           /* '\ufffd\x80' */
    {"\341\200\341\200\200", 5,
     "\357\277\275\341\200\200"},                        /* '\ufffd\u1000' */
    {"\364\200\200\364", 4, "\357\277\275\357\277\275"}, /* '\ufffd\ufffd' */
    {"12345678\302\205abcdefgh\013", 19,
     "12345678\\u0085abcdefgh\\u000b"}, /* '12345678\x85abcdefgh\x0b' */
    {"\360\220\200\200\363\277\277\277", 8,
     "\360\220\200\200\363\277\277\277"}, /* '\U00010000\U000fffff' */
    {"\355\200\200\355\237\277\355\240", 8,
     "\355\200\200\355\237\277\357\277\275\357\277\275"}, /* '\ud000\ud7ff\ufffd\ufffd'
                                                           */
    {"\376\377\300\200\340\200\360\200", 8,
     "\357\277\275\357\277\275\357\277\275\357\277\275\357\277\275\357\277\275"
     "\357\277\275\357\277\275"}, /* '\ufffd\ufffd\ufffd\ufffd\ufffd\ufffd\ufffd\ufffd'
                                   */
};

static void test_encode_python_table(void **state)
{
  size_t i;
  (void)state;
  assert_true(CCCI_ARRAY_LEN(python_table) >= 30);
  for (i = 0; i < CCCI_ARRAY_LEN(python_table); i++)
    expect_out(python_table[i].in, python_table[i].len, python_table[i].out,
               strlen(python_table[i].out));
}

/* ---- the cap ---- */

static void test_encode_enobufs(void **state)
{
  static const char want[] = "{\"pos\":5,\"out\":\"\\u001bx\\n\",\"time\":9}\n";
  const size_t wl = sizeof(want) - 1;
  struct ccci_buf b;
  (void)state;

  /* Exactly enough room. */
  ccci_buf_init(&b, 3 + wl);
  assert_int_equal(ccci_buf_append(&b, STR("abc")), 0);
  assert_int_equal(ccci_logline_encode(&b, 5, STR("\x1bx\n"), 9), 0);
  assert_int_equal(b.len, 3 + wl);
  assert_memory_equal(b.data + 3, want, wl);
  /* Full: the next line fails and leaves the buffer as it was. */
  assert_int_equal(ccci_logline_encode(&b, 6, STR(""), 9), -ENOBUFS);
  assert_int_equal(b.len, 3 + wl);
  assert_memory_equal(b.data + 3, want, wl);
  assert_int_equal(b.data[b.len], '\0');
  ccci_buf_close(&b);

  /* One byte short. */
  ccci_buf_init(&b, 3 + wl - 1);
  assert_int_equal(ccci_buf_append(&b, STR("abc")), 0);
  assert_int_equal(ccci_logline_encode(&b, 5, STR("\x1bx\n"), 9), -ENOBUFS);
  assert_int_equal(b.len, 3);
  assert_string_equal(b.data, "abc");
  ccci_buf_close(&b);

  /* A cap below the bare frame, and an empty buffer. */
  ccci_buf_init(&b, 10);
  assert_int_equal(ccci_logline_encode(&b, 0, STR("x"), 0), -ENOBUFS);
  assert_int_equal(b.len, 0);
  ccci_buf_close(&b);
}

/* ---- a reference: the Unicode Table 3-7 and the JSON rules, plainly ---- */

static const struct {
  uint8_t lo, hi, len, lo2, hi2;
} table_3_7[] = {
    {0x00, 0x7F, 1, 0, 0},       {0xC2, 0xDF, 2, 0x80, 0xBF},
    {0xE0, 0xE0, 3, 0xA0, 0xBF}, {0xE1, 0xEC, 3, 0x80, 0xBF},
    {0xED, 0xED, 3, 0x80, 0x9F}, {0xEE, 0xEF, 3, 0x80, 0xBF},
    {0xF0, 0xF0, 4, 0x90, 0xBF}, {0xF1, 0xF3, 4, 0x80, 0xBF},
    {0xF4, 0xF4, 4, 0x80, 0x8F},
};

/* Decode at @p s (@p n > 0): the code point and its length in @p adv, or
 * -1 and the length of the maximal subpart (one U+FFFD) in @p adv. */
static long ref_decode(const uint8_t *s, size_t n, size_t *adv)
{
  size_t r, k;
  long cp;
  for (r = 0; r < CCCI_ARRAY_LEN(table_3_7); r++)
    if (s[0] >= table_3_7[r].lo && s[0] <= table_3_7[r].hi)
      break;
  *adv = 1;
  if (r == CCCI_ARRAY_LEN(table_3_7))
    return -1;
  cp = table_3_7[r].len == 1   ? s[0]
       : table_3_7[r].len == 2 ? s[0] & 0x1F
       : table_3_7[r].len == 3 ? s[0] & 0x0F
                               : s[0] & 0x07;
  for (k = 1; k < table_3_7[r].len; k++) {
    uint8_t lo = k == 1 ? table_3_7[r].lo2 : 0x80;
    uint8_t hi = k == 1 ? table_3_7[r].hi2 : 0xBF;
    if (k >= n || s[k] < lo || s[k] > hi) {
      *adv = k;
      return -1;
    }
    cp = (cp << 6) | (s[k] & 0x3F);
  }
  *adv = table_3_7[r].len;
  return cp;
}

static void put_utf8(struct ccci_buf *o, long cp)
{
  char u[4];
  size_t n;
  if (cp < 0x80) {
    u[0] = (char)cp, n = 1;
  } else if (cp < 0x800) {
    u[0] = (char)(0xC0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
  } else if (cp < 0x10000) {
    u[0] = (char)(0xE0 | (cp >> 12)), u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
  } else {
    u[0] = (char)(0xF0 | (cp >> 18)), u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), u[3] = (char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  assert_int_equal(ccci_buf_append(o, u, n), 0);
}

/* Python's bytes.decode('utf-8', 'replace') as UTF-8 in @p dec, and its JSON
 * escape by the module's rules in @p esc. */
static void reference(const uint8_t *s, size_t n, struct ccci_buf *dec,
                      struct ccci_buf *esc)
{
  size_t i = 0, adv;
  long cp;
  char u[8];
  ccci_buf_init(dec, SIZE_MAX / 2);
  ccci_buf_init(esc, SIZE_MAX / 2);
  while (i < n) {
    cp = ref_decode(s + i, n - i, &adv);
    i += adv;
    if (cp < 0)
      cp = 0xFFFD;
    put_utf8(dec, cp);
    if (cp == '"' || cp == '\\') {
      u[0] = '\\', u[1] = (char)cp;
      assert_int_equal(ccci_buf_append(esc, u, 2), 0);
    } else if (cp == '\b' || cp == '\f' || cp == '\n' || cp == '\r' ||
               cp == '\t') {
      u[0] = '\\';
      u[1] = cp == '\b'   ? 'b'
             : cp == '\f' ? 'f'
             : cp == '\n' ? 'n'
             : cp == '\r' ? 'r'
                          : 't';
      assert_int_equal(ccci_buf_append(esc, u, 2), 0);
    } else if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
      assert_int_equal(ccci_buf_printf(esc, "\\u%04lx", cp), 0);
    } else {
      put_utf8(esc, cp);
    }
  }
}

static uint64_t rng = 0x9E3779B97F4A7C15u;

static uint64_t next_rand(void)
{
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* Random bytes rich in what matters: ASCII runs, controls, continuation
 * bytes, every kind of lead byte, and well-formed sequences. */
static size_t random_text(uint8_t *p, size_t max)
{
  static const uint8_t leads[] = {0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xED,
                                  0xEE, 0xEF, 0xF0, 0xF1, 0xF4, 0xF5, 0xFF};
  size_t n = (size_t)(next_rand() % (max + 1)), i = 0, k;
  struct ccci_buf u;
  while (i < n) {
    uint64_t r = next_rand();
    switch (r % 8) {
    case 0: /* a run of printable ASCII */
      for (k = 0; k < (r >> 8) % 20 && i < n; k++)
        p[i++] = (uint8_t)(0x20 + (r >> (16 + k % 40)) % 0x5F);
      break;
    case 1:
      p[i++] = (uint8_t)((r >> 8) % 0x20);
      break;
    case 2:
      p[i++] = (uint8_t)(0x80 + (r >> 8) % 0x40);
      break;
    case 3:
      p[i++] = leads[(r >> 8) % sizeof(leads)];
      break;
    case 4: /* a well-formed sequence */
      ccci_buf_init(&u, 8);
      put_utf8(&u, (long)((r >> 8) % 0x110000));
      for (k = 0; k < u.len && i < n; k++)
        p[i++] = (uint8_t)u.data[k];
      ccci_buf_close(&u);
      break;
    case 5:
      p[i++] = (uint8_t)(r >> 8);
      break;
    case 6:
      p[i++] = "\"\\\x7f\n\r\t"[(r >> 8) % 6];
      break;
    default:
      p[i++] = (uint8_t)(0xA0 + (r >> 8) % 0x60);
    }
  }
  return n;
}

/* Random inputs: the line parses with jansson, `out` decodes to exactly the
 * reference replacement, and the bytes equal the reference escape. */
static void test_encode_random_json(void **state)
{
  uint8_t text[400];
  struct ccci_buf b, dec, esc;
  json_error_t je;
  json_t *j, *out;
  const char *body;
  size_t n;
  int iter;
  (void)state;
  for (iter = 0; iter < 20000; iter++) {
    uint64_t pos = next_rand() >> 1, t = next_rand() % 100000;
    n = random_text(text, sizeof(text));
    ccci_buf_init(&b, SIZE_MAX / 2);
    assert_int_equal(ccci_logline_encode(&b, pos, (char *)text, n, t), 0);
    assert_true(b.len > 0 && b.data[b.len - 1] == '\n');
    assert_null(memchr(b.data, '\n', b.len - 1));
    j = json_loadb(b.data, b.len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
    if (j == NULL)
      fail_msg("invalid JSON at %d: %s", je.position, je.text);
    assert_true(json_is_object(j));
    assert_int_equal(json_object_size(j), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "pos")), pos);
    assert_int_equal(json_integer_value(json_object_get(j, "time")), t);
    out = json_object_get(j, "out");
    assert_true(json_is_string(out));
    reference(text, n, &dec, &esc);
    assert_int_equal(json_string_length(out), dec.len);
    assert_memory_equal(json_string_value(out), dec.data, dec.len);
    assert_true(b.len > esc.len + 16);
    body = strstr(b.data, ",\"out\":\"");
    assert_non_null(body);
    body += strlen(",\"out\":\"");
    assert_memory_equal(body, esc.data, esc.len);
    assert_memory_equal(body + esc.len, "\",\"time\":", 9);
    json_decref(j);
    ccci_buf_close(&dec);
    ccci_buf_close(&esc);
    ccci_buf_close(&b);
  }
}

/* The exact-measure path near the cap agrees with the worst-case path: a
 * cap of exactly the line's length fits, one byte less fails cleanly. */
static void test_encode_cap_exact(void **state)
{
  uint8_t text[300];
  struct ccci_buf free_b, b;
  size_t n;
  int iter;
  (void)state;
  for (iter = 0; iter < 5000; iter++) {
    n = random_text(text, sizeof(text));
    ccci_buf_init(&free_b, SIZE_MAX / 2);
    assert_int_equal(ccci_logline_encode(&free_b, iter, (char *)text, n, 7), 0);
    ccci_buf_init(&b, free_b.len);
    assert_int_equal(ccci_logline_encode(&b, iter, (char *)text, n, 7), 0);
    assert_int_equal(b.len, free_b.len);
    assert_memory_equal(b.data, free_b.data, b.len);
    ccci_buf_close(&b);
    ccci_buf_init(&b, free_b.len - 1);
    assert_int_equal(ccci_logline_encode(&b, iter, (char *)text, n, 7),
                     -ENOBUFS);
    assert_int_equal(b.len, 0);
    ccci_buf_close(&b);
    ccci_buf_close(&free_b);
  }
}

/* ccci_logline_cut against its definition on random text: within bounds,
 * never inside a well-formed sequence, and as large as allowed. */
static void test_cut_random(void **state)
{
  uint8_t text[64];
  size_t n, max, got, i, adv, start;
  int iter;
  (void)state;
  for (iter = 0; iter < 20000; iter++) {
    n = random_text(text, sizeof(text));
    max = 1 + (size_t)(next_rand() % 16);
    got = ccci_logline_cut((char *)text, n, max);
    if (n <= max) {
      assert_int_equal(got, n);
      continue;
    }
    assert_true(got >= 1 && got <= max);
    /* Where does the well-formed sequence covering byte max - 1 start,
     * if one covers it and goes on past the cut? */
    start = max;
    for (i = 0; i < n; i += adv)
      if (ref_decode(text + i, n - i, &adv) >= 0 && adv > 1 && i < max &&
          i + adv > max)
        start = i;
    if (start == max || start == 0)
      assert_int_equal(got, max);
    else
      assert_int_equal(got, start);
  }
}

/* ---- differential: the encoder against the reference encoder ---- */

/* Numbers around every change in the count of decimal digits. */
static uint64_t edge_number(uint64_t r)
{
  uint64_t p = 1;
  unsigned k = (unsigned)(r % 20), i;
  for (i = 0; i < k; i++)
    p *= 10;
  switch ((r >> 8) % 4) {
  case 0:
    return p - 1;
  case 1:
    return p;
  case 2:
    return p + (r >> 16) % 10;
  default:
    return (r >> 16) % 3 == 0 ? UINT64_MAX : next_rand() >> (r >> 24) % 64;
  }
}

/* Encode @p n bytes at @p text with both encoders into buffers capped at
 * @p max that already hold @p prefix bytes, and compare the results, the
 * buffers' contents and their terminators. The text is copied to a heap
 * block of exactly @p n bytes so that ASan sees any read past its end.
 * Returns the encoder's result. */
static int diff_encode(const uint8_t *text, size_t n, uint64_t pos, uint64_t t,
                       size_t prefix, size_t max)
{
  struct ccci_buf got, want;
  uint8_t *copy = malloc(n > 0 ? n : 1);
  size_t i;
  int rg, rw;
  assert_non_null(copy);
  if (n > 0)
    memcpy(copy, text, n);
  ccci_buf_init(&got, max);
  ccci_buf_init(&want, max);
  for (i = 0; i < prefix; i++) {
    char c = (char)('a' + i % 26);
    assert_int_equal(ccci_buf_append(&got, &c, 1), 0);
    assert_int_equal(ccci_buf_append(&want, &c, 1), 0);
  }
  rw = ref_logline_encode(&want, pos, (char *)copy, n, t);
  rg = ccci_logline_encode(&got, pos, (char *)copy, n, t);
  assert_int_equal(rg, rw);
  assert_int_equal(got.len, want.len);
  if (want.len > 0) {
    assert_memory_equal(got.data, want.data, want.len);
    assert_int_equal(got.data[got.len], '\0');
  }
  ccci_buf_close(&got);
  ccci_buf_close(&want);
  free(copy);
  return rg;
}

/* One input, uncapped and then with caps around the exact length of its
 * line and around the worst case (66 + 6 bytes per input byte) where the
 * encoder stops reserving for the worst and measures. */
static void diff_caps(const uint8_t *text, size_t n, uint64_t pos, uint64_t t)
{
  struct ccci_buf b;
  size_t prefix = (size_t)(next_rand() % 40), exact, worst, d;
  assert_int_equal(diff_encode(text, n, pos, t, prefix, SIZE_MAX / 2), 0);
  ccci_buf_init(&b, SIZE_MAX / 2);
  assert_int_equal(ref_logline_encode(&b, pos, (char *)text, n, t), 0);
  exact = prefix + b.len;
  worst = prefix + 66 + 6 * n;
  ccci_buf_close(&b);
  for (d = 0; d < 3; d++) {
    (void)diff_encode(text, n, pos, t, prefix, exact - d);
    (void)diff_encode(text, n, pos, t, prefix, worst + d);
    (void)diff_encode(text, n, pos, t, prefix, worst - 1 - d);
  }
  (void)diff_encode(text, n, pos, t, prefix, exact + 1);
  (void)diff_encode(text, n, pos, t, prefix, prefix + n);
  (void)diff_encode(text, n, pos, t, prefix, prefix + n - (n > 0));
  (void)diff_encode(text, n, pos, t, prefix,
                    prefix + next_rand() % (8 * n + 80));
}

/* Random valid UTF-8 of every length class, C1 controls and U+FFFD
 * included, with now and then an ill-formed byte. */
static size_t random_utf8(uint8_t *p, size_t max, bool valid)
{
  static const long ranges[][2] = {
      {0x20, 0x7E},        {0x00, 0x7F},     {0x80, 0x9F},
      {0xA0, 0x7FF},       {0x800, 0xD7FF},  {0xE000, 0xFFFF},
      {0x10000, 0x10FFFF}, {0xFFFD, 0xFFFD}, {0x2028, 0x2029},
  };
  size_t n = (size_t)(next_rand() % (max + 1)), i = 0, k;
  struct ccci_buf u;
  while (i < n) {
    uint64_t r = next_rand();
    size_t g = (size_t)(r % CCCI_ARRAY_LEN(ranges));
    long lo = ranges[g][0], hi = ranges[g][1];
    if (!valid && (r >> 60) == 0) {
      p[i++] = (uint8_t)(r >> 8);
      continue;
    }
    ccci_buf_init(&u, 8);
    put_utf8(&u, lo + (long)((r >> 8) % (uint64_t)(hi - lo + 1)));
    for (k = 0; k < u.len && i < n; k++)
      p[i++] = (uint8_t)u.data[k];
    ccci_buf_close(&u);
  }
  return n;
}

static void test_encode_diff_random(void **state)
{
  uint8_t text[400];
  size_t n, i;
  int iter;
  (void)state;
  for (iter = 0; iter < 30000; iter++) {
    uint64_t pos = edge_number(next_rand()), t = edge_number(next_rand());
    switch (iter % 4) {
    case 0: /* random bytes */
      n = (size_t)(next_rand() % (sizeof(text) + 1));
      for (i = 0; i < n; i++)
        text[i] = (uint8_t)next_rand();
      break;
    case 1:
      n = random_utf8(text, sizeof(text), true);
      break;
    case 2:
      n = random_utf8(text, sizeof(text), false);
      break;
    default:
      n = random_text(text, sizeof(text));
    }
    if (iter % 8 < 4)
      assert_int_equal(diff_encode(text, n, pos, t, 0, SIZE_MAX / 2), 0);
    else
      diff_caps(text, n, pos, t);
  }
}

/* Every length 0..300 of plain ASCII, and every position in it of one byte
 * or sequence that needs work: each control byte, DEL, quote, backslash,
 * C1 controls, well-formed and truncated sequences, stray bytes. */
static void test_encode_diff_lengths(void **state)
{
  static const char *const specials[] = {
      "\n",           "\"",           "\\",       "\x7f",
      "\x1b",         "\t",           "\r",       "\x00",
      "\x1f",         "\x80",         "\xc2\x85", "\xc2\xa0",
      "\xc3\xa9",     "\xe2\x82\xac", "\xe2\x82", "\xf0\x9f\x98\x80",
      "\xf0\x9f\x98", "\xed\xa0\x80", "\xff",     "\xc0\xaf",
      "\xef\xbf\xbd", "\x20",         "\x7e",     "\x5b\x5d",
  };
  static const size_t special_len[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2,
                                       2, 3, 2, 4, 3, 3, 1, 2, 3, 1, 1, 2};
  uint8_t base[300], text[300];
  size_t n, at, k = 0, sl;
  (void)state;
  assert_int_equal(CCCI_ARRAY_LEN(specials), CCCI_ARRAY_LEN(special_len));
  for (at = 0; at < sizeof(base); at++) {
    base[at] = (uint8_t)(0x20 + (at * 7) % 0x5F);
    if (base[at] == '"' || base[at] == '\\')
      base[at] = 'x';
  }
  for (n = 0; n <= 300; n++) {
    assert_int_equal(diff_encode(base, n, n, n, 0, SIZE_MAX / 2), 0);
    for (at = 0; at < n; at++) {
      k = (k + 1) % CCCI_ARRAY_LEN(specials);
      sl = special_len[k];
      if (at + sl > n)
        continue;
      memcpy(text, base, n);
      memcpy(text + at, specials[k], sl);
      assert_int_equal(diff_encode(text, n, at, n, 0, SIZE_MAX / 2), 0);
      /* And with the '\n' that ends most lines after it. */
      if (at + sl < n) {
        text[n - 1] = '\n';
        assert_int_equal(diff_encode(text, n, at, n, 0, SIZE_MAX / 2), 0);
      }
    }
  }
}

/* Every byte value, alone, doubled, and in runs of plain bytes at every
 * offset within a 16-byte block. */
static void test_encode_diff_bytes(void **state)
{
  uint8_t text[80];
  size_t at;
  int c;
  (void)state;
  for (c = 0; c < 256; c++) {
    text[0] = (uint8_t)c;
    text[1] = (uint8_t)c;
    assert_int_equal(diff_encode(text, 1, 0, 0, 0, SIZE_MAX / 2), 0);
    assert_int_equal(diff_encode(text, 2, 0, 0, 0, SIZE_MAX / 2), 0);
    for (at = 0; at < 40; at++) {
      memset(text, 'k', sizeof(text));
      text[at] = (uint8_t)c;
      text[at + 17] = (uint8_t)c;
      assert_int_equal(diff_encode(text, at + 1, 0, 0, 0, SIZE_MAX / 2), 0);
      assert_int_equal(diff_encode(text, at + 18, 0, 0, 0, SIZE_MAX / 2), 0);
      assert_int_equal(diff_encode(text, sizeof(text), 0, 0, 0, SIZE_MAX / 2),
                       0);
    }
  }
}

/* Lines around the 64 KiB cut: ASCII, mixed text and multi-byte runs,
 * uncapped and at caps around their exact size. */
static void test_encode_diff_long(void **state)
{
  const size_t cap = CCCI_LOGLINE_MAX + 64;
  uint8_t *text = malloc(cap);
  size_t n, i, m;
  (void)state;
  assert_non_null(text);
  for (n = CCCI_LOGLINE_MAX - 20; n <= CCCI_LOGLINE_MAX + 20; n += 4) {
    for (i = 0; i < n; i++)
      text[i] = (uint8_t)(0x20 + i % 0x5F);
    text[n - 1] = '\n';
    diff_caps(text, n, n, 0);
    for (i = 0; i < n; i++)
      text[i] = (uint8_t)(i % 97 == 0 ? next_rand() : 0x21 + i % 0x5E);
    diff_caps(text, n, n, 1);
    /* Multi-byte text: Cyrillic, CJK and emoji runs. */
    for (i = 0; i + 4 <= n; i += m) {
      static const char *const seqs[] = {"\xd0\x96", "\xe4\xb8\xad",
                                         "\xf0\x9f\x9a\x80", "a"};
      size_t s = (i / 64) % 4;
      m = strlen(seqs[s]);
      memcpy(text + i, seqs[s], m);
    }
    for (; i < n; i++)
      text[i] = 'z';
    diff_caps(text, n, n, 2);
    random_text(text, n); /* fills a random prefix */
    diff_caps(text, n, n, 3);
  }
  free(text);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_marker_valid),
      cmocka_unit_test(test_marker_invalid),
      cmocka_unit_test(test_cut_ascii),
      cmocka_unit_test(test_cut_emoji),
      cmocka_unit_test(test_cut_invalid),
      cmocka_unit_test(test_cut_random),
      cmocka_unit_test(test_encode_frame),
      cmocka_unit_test(test_encode_appends),
      cmocka_unit_test(test_encode_ascii_escapes),
      cmocka_unit_test(test_encode_c1),
      cmocka_unit_test(test_encode_replacement),
      cmocka_unit_test(test_encode_ansi),
      cmocka_unit_test(test_encode_python_table),
      cmocka_unit_test(test_encode_enobufs),
      cmocka_unit_test(test_encode_cap_exact),
      cmocka_unit_test(test_encode_random_json),
      cmocka_unit_test(test_encode_diff_random),
      cmocka_unit_test(test_encode_diff_lengths),
      cmocka_unit_test(test_encode_diff_bytes),
      cmocka_unit_test(test_encode_diff_long),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
