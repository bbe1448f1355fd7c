/* Unit tests of html: escaping (the five characters, U+FFFD for ill-formed
 * UTF-8 as Python's errors='replace', controls dropped) and ANSI SGR
 * sequences as spans (styles, 16/256/true colours, resets, balance, other
 * sequences dropped). */
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
#include "ccci/http/html.h"
#include "ccci/logs/logline.h"

#define STR(s) (s), (sizeof(s) - 1)

static void expect_escape(const char *in, size_t len, const char *want)
{
  struct ccci_buf b;
  ccci_buf_init(&b, SIZE_MAX);
  assert_int_equal(ccci_html_escape(&b, in, len), 0);
  assert_string_equal(b.data != NULL ? b.data : "", want);
  ccci_buf_close(&b);
}

static void expect_ansi(const char *in, size_t len, const char *want)
{
  struct ccci_buf b;
  ccci_buf_init(&b, SIZE_MAX);
  assert_int_equal(ccci_html_ansi(&b, in, len), 0);
  assert_string_equal(b.data != NULL ? b.data : "", want);
  ccci_buf_close(&b);
}

static void test_escape_specials(void **state)
{
  (void)state;
  expect_escape(STR(""), "");
  expect_escape(STR("plain text"), "plain text");
  expect_escape(STR("<script>alert(1)</script>"),
                "&lt;script&gt;alert(1)&lt;/script&gt;");
  expect_escape(STR("a & b \"c\" 'd'"), "a &amp; b &quot;c&quot; &#39;d&#39;");
  expect_escape(STR("&amp;"), "&amp;amp;");
}

static void test_escape_controls(void **state)
{
  (void)state;
  expect_escape(STR("a\tb\nc"), "a\tb\nc");
  expect_escape(STR("a\rb\x01\x1b[31mc\x7f"), "ab[31mc");
  expect_escape("a\0b", 3, "ab");
  /* C1 controls (U+0080..U+009F) are dropped too. */
  expect_escape(STR("x\xc2\x80y\xc2\x9fz\xc2\xa0"), "xyz\xc2\xa0");
}

static void test_escape_utf8(void **state)
{
  (void)state;
  expect_escape(STR("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
                "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  /* One U+FFFD per maximal subpart, as Python's errors='replace'. */
  expect_escape(STR("\xff"), "\xef\xbf\xbd");
  expect_escape(STR("\xc3"), "\xef\xbf\xbd");
  expect_escape(STR("\xe2\x82"), "\xef\xbf\xbd");
  expect_escape(STR("\xe2\x82<"), "\xef\xbf\xbd&lt;");
  expect_escape(STR("\xf0\x9f\x98"), "\xef\xbf\xbd");
  expect_escape(STR("\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd");
  expect_escape(STR("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
  expect_escape(STR("\xf4\x90\x80\x80"),
                "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
  expect_escape(STR("\xe0\x80\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
}

/* The replacement is the encoder's (itself checked against Python's):
 * random bytes, through ccci_logline_encode and back, equal our escaping
 * with the C1 controls removed. */
static void test_escape_matches_logline(void **state)
{
  static const unsigned char pool[] = {'a',  0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf,
                                       0xc0, 0xc2, 0xc3, 0xdf, 0xe0, 0xe2, 0xed,
                                       0xef, 0xf0, 0xf4, 0xf5, 0xff};
  unsigned seed = 12345;
  int iter;
  (void)state;
  for (iter = 0; iter < 20000; iter++) {
    char in[12];
    size_t n = (size_t)(iter % 12), i, k;
    struct ccci_buf enc, esc;
    json_t *j;
    const char *out;
    char want[64];

    for (i = 0; i < n; i++) {
      seed = seed * 1103515245u + 12345u;
      in[i] = (char)pool[(seed >> 16) % sizeof(pool)];
    }
    ccci_buf_init(&enc, SIZE_MAX);
    assert_int_equal(ccci_logline_encode(&enc, 0, in, n, 0), 0);
    j = json_loadb(enc.data, enc.len, 0, NULL);
    assert_non_null(j);
    out = json_string_value(json_object_get(j, "out"));
    assert_non_null(out);
    for (i = 0, k = 0; out[i] != '\0'; i++) {
      if ((unsigned char)out[i] == 0xc2 && (unsigned char)out[i + 1] >= 0x80 &&
          (unsigned char)out[i + 1] <= 0x9f) {
        i++;
        continue;
      }
      want[k++] = out[i];
    }
    want[k] = '\0';
    ccci_buf_init(&esc, SIZE_MAX);
    assert_int_equal(ccci_html_escape(&esc, in, n), 0);
    assert_string_equal(esc.data != NULL ? esc.data : "", want);
    ccci_buf_close(&esc);
    ccci_buf_close(&enc);
    json_decref(j);
  }
}

static void test_escape_cap(void **state)
{
  struct ccci_buf b;
  (void)state;
  ccci_buf_init(&b, 10);
  assert_int_equal(ccci_buf_append(&b, "abc", 3), 0);
  assert_int_equal(ccci_html_escape(&b, STR("<<<<")), -ENOBUFS);
  assert_int_equal(b.len, 3);
  assert_string_equal(b.data, "abc");
  assert_int_equal(ccci_html_escape(&b, STR("<")), 0);
  assert_string_equal(b.data, "abc&lt;");
  ccci_buf_close(&b);
}

static void test_ansi_plain(void **state)
{
  (void)state;
  expect_ansi(STR(""), "");
  expect_ansi(STR("no colour <b>"), "no colour &lt;b&gt;");
  expect_ansi(STR("\x1b[0mreset only\x1b[m"), "reset only");
  /* A style with no text after it opens nothing. */
  expect_ansi(STR("x\x1b[31m"), "x");
  expect_ansi(STR("\x1b[31m\x1b[0m"), "");
}

static void test_ansi_styles(void **state)
{
  (void)state;
  expect_ansi(STR("\x1b[1mbold\x1b[0m plain"),
              "<span class=\"a-b\">bold</span> plain");
  expect_ansi(STR("\x1b[2md\x1b[22m\x1b[3mi\x1b[23m\x1b[4mu\x1b[24mx"),
              "<span class=\"a-d\">d</span><span class=\"a-i\">i</span>"
              "<span class=\"a-u\">u</span>x");
  expect_ansi(STR("\x1b[1;2;3;4;31;42mall\x1b[0m"),
              "<span class=\"a-b a-d a-i a-u a-f1 a-g2\">all</span>");
  expect_ansi(STR("\x1b[1mb\x1b[22mn"), "<span class=\"a-b\">b</span>n");
  expect_ansi(STR("\x1b[4:3mcurly\x1b[4:0mno"),
              "<span class=\"a-u\">curly</span>no");
  expect_ansi(STR("\x1b[21mdu"), "<span class=\"a-u\">du</span>");
}

static void test_ansi_colours(void **state)
{
  (void)state;
  expect_ansi(STR("\x1b[31mred\x1b[39m plain"),
              "<span class=\"a-f1\">red</span> plain");
  expect_ansi(STR("\x1b[44mbg\x1b[49m"), "<span class=\"a-g4\">bg</span>");
  expect_ansi(STR("\x1b[91mbr\x1b[107mw"),
              "<span class=\"a-f9\">br</span><span class=\"a-f9 a-g15\">w"
              "</span>");
  expect_ansi(STR("\x1b[32mg\x1b[33my"),
              "<span class=\"a-f2\">g</span><span class=\"a-f3\">y</span>");
  /* The same style again keeps the span open. */
  expect_ansi(STR("\x1b[32mg\x1b[32mh"), "<span class=\"a-f2\">gh</span>");
  /* 256 colours: the first 16 as they are, the cube and greys to the
   * nearest. */
  expect_ansi(STR("\x1b[38;5;9mx"), "<span class=\"a-f9\">x</span>");
  expect_ansi(STR("\x1b[38;5;196mx"), "<span class=\"a-f9\">x</span>");
  expect_ansi(STR("\x1b[38;5;16mx"), "<span class=\"a-f0\">x</span>");
  expect_ansi(STR("\x1b[48;5;231mx"), "<span class=\"a-g15\">x</span>");
  expect_ansi(STR("\x1b[38;5;244mx"), "<span class=\"a-f8\">x</span>");
  expect_ansi(STR("\x1b[38;5;34mx"), "<span class=\"a-f2\">x</span>");
  /* True colour. */
  expect_ansi(STR("\x1b[38;2;250;10;10mx"), "<span class=\"a-f9\">x</span>");
  expect_ansi(STR("\x1b[48;2;0;0;230mx"), "<span class=\"a-g4\">x</span>");
  expect_ansi(STR("\x1b[38:2::0:205:0mx"), "<span class=\"a-f2\">x</span>");
  expect_ansi(STR("\x1b[38:2:0:205:205mx"), "<span class=\"a-f6\">x</span>");
  expect_ansi(STR("\x1b[38:5:11mx"), "<span class=\"a-f11\">x</span>");
  /* What follows an extended colour is read on. */
  expect_ansi(STR("\x1b[38;5;1;1mx"), "<span class=\"a-b a-f1\">x</span>");
  expect_ansi(STR("\x1b[38;2;0;0;0;4mx"), "<span class=\"a-u a-f0\">x</span>");
  /* Malformed ones are ignored. */
  expect_ansi(STR("\x1b[38;5;300mx"), "x");
  expect_ansi(STR("\x1b[38;2;1mx"), "x");
  expect_ansi(STR("\x1b[38mx"), "x");
  expect_ansi(STR("\x1b[38;7;1mx"), "<span class=\"a-b\">x</span>");
}

static void test_ansi_other_sequences(void **state)
{
  (void)state;
  /* CSI of any final byte, private SGR-like ones included. */
  expect_ansi(STR("a\x1b[2Kb\x1b[1;1Hc\x1b[?25ld\x1b[>4;1me"), "abcde");
  expect_ansi(STR("\x1b[ q x"), " x");
  /* OSC to BEL or ST, the title and hyperlinks. */
  expect_ansi(STR("a\x1b]0;title\x07"
                  "b"),
              "ab");
  expect_ansi(STR("\x1b]8;;http://x/\x1b\\link\x1b]8;;\x1b\\"), "link");
  expect_ansi(STR("a\x1bPdcs\x1b\\b"), "ab");
  /* Charset selection and two-byte escapes. */
  expect_ansi(STR("a\x1b(Bb\x1b"
                  "7c\x1b=d"),
              "abcd");
  /* Unterminated: dropped to the end. */
  expect_ansi(STR("a\x1b]0;never ends"), "a");
  expect_ansi(STR("a\x1b[12"), "a");
  expect_ansi(STR("a\x1b"), "a");
  /* A CSI cut by a control ends there; the text goes on. */
  expect_ansi(STR("a\x1b[1\tb"), "a\tb");
  /* No '<' from the input gets through inside a sequence. */
  expect_ansi(STR("\x1b[<31m<x>"), "&lt;x&gt;");
}

static void test_ansi_lines(void **state)
{
  (void)state;
  expect_ansi(STR("\x1b[31mred\nstill red\x1b[0m\n"),
              "<span class=\"a-f1\">red</span>\n<span class=\"a-f1\">still "
              "red</span>\n");
  expect_ansi(STR("\x1b[1m<b>\xff"),
              "<span class=\"a-b\">&lt;b&gt;\xef\xbf\xbd</span>");
}

static void test_ansi_cap(void **state)
{
  struct ccci_buf b;
  (void)state;
  ccci_buf_init(&b, 32);
  assert_int_equal(ccci_html_ansi(&b, STR("\x1b[31mred text long")), -ENOBUFS);
  assert_int_equal(b.len, 0);
  assert_int_equal(ccci_html_ansi(&b, STR("\x1b[31mred")), 0);
  assert_string_equal(b.data, "<span class=\"a-f1\">red</span>");
  ccci_buf_close(&b);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_escape_specials),
      cmocka_unit_test(test_escape_controls),
      cmocka_unit_test(test_escape_utf8),
      cmocka_unit_test(test_escape_matches_logline),
      cmocka_unit_test(test_escape_cap),
      cmocka_unit_test(test_ansi_plain),
      cmocka_unit_test(test_ansi_styles),
      cmocka_unit_test(test_ansi_colours),
      cmocka_unit_test(test_ansi_other_sequences),
      cmocka_unit_test(test_ansi_lines),
      cmocka_unit_test(test_ansi_cap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
