"""The PTB lexer's rules (Stanford CoreNLP 3.4.1's PTBTokenizer), and their translation into
the tables `tokenizer` runs: each rule as a regex over character-class codes, the codes each
rule can start with, and the code of every BMP code point.

Deriving the tables takes ~30 ms (parsing and rewriting every rule), a tenth of scoring a
1000-caption corpus, so `tokenizer` caches `tables()` on disk and imports this module only
when the cache is missing or stale.
"""

from __future__ import annotations

import bisect
import functools
import re
import re._constants as _sre
import re._parser as _parser

# Code points (hex ranges) that JFlex 1.4 compiled into the 3.4.1 jar as [:letter:]
# (Java 7's Character.isLetter, BMP only), probed from the jar. Kept verbatim because
# Python's Unicode tables are newer and differ in ~500 code points.
_LETTER_HEX = """
41-5a 61-7a aa b5 ba c0-d6 d8-f6 f8-2c1 2c6-2d1 2e0-2e4 2ec 2ee 370-374 376-377 37a-37d 386 388-38a
38c 38e-3a1 3a3-3f5 3f7-481 48a-527 531-556 559 561-587 5d0-5ea 5f0-5f2 620-64a 66e-66f 671-6d3 6d5
6e5-6e6 6ee-6ef 6fa-6fc 6ff 710 712-72f 74d-7a5 7b1 7ca-7ea 7f4-7f5 7fa 800-815 81a 824 828 840-858
8a0 8a2-8ac 904-939 93d 950 958-961 971-977 979-97f 985-98c 98f-990 993-9a8 9aa-9b0 9b2 9b6-9b9 9bd
9ce 9dc-9dd 9df-9e1 9f0-9f1 a05-a0a a0f-a10 a13-a28 a2a-a30 a32-a33 a35-a36 a38-a39 a59-a5c a5e
a72-a74 a85-a8d a8f-a91 a93-aa8 aaa-ab0 ab2-ab3 ab5-ab9 abd ad0 ae0-ae1 b05-b0c b0f-b10 b13-b28
b2a-b30 b32-b33 b35-b39 b3d b5c-b5d b5f-b61 b71 b83 b85-b8a b8e-b90 b92-b95 b99-b9a b9c b9e-b9f
ba3-ba4 ba8-baa bae-bb9 bd0 c05-c0c c0e-c10 c12-c28 c2a-c33 c35-c39 c3d c58-c59 c60-c61 c85-c8c
c8e-c90 c92-ca8 caa-cb3 cb5-cb9 cbd cde ce0-ce1 cf1-cf2 d05-d0c d0e-d10 d12-d3a d3d d4e d60-d61
d7a-d7f d85-d96 d9a-db1 db3-dbb dbd dc0-dc6 e01-e30 e32-e33 e40-e46 e81-e82 e84 e87-e88 e8a e8d
e94-e97 e99-e9f ea1-ea3 ea5 ea7 eaa-eab ead-eb0 eb2-eb3 ebd ec0-ec4 ec6 edc-edf f00 f40-f47 f49-f6c
f88-f8c 1000-102a 103f 1050-1055 105a-105d 1061 1065-1066 106e-1070 1075-1081 108e 10a0-10c5 10c7
10cd 10d0-10fa 10fc-1248 124a-124d 1250-1256 1258 125a-125d 1260-1288 128a-128d 1290-12b0 12b2-12b5
12b8-12be 12c0 12c2-12c5 12c8-12d6 12d8-1310 1312-1315 1318-135a 1380-138f 13a0-13f4 1401-166c
166f-167f 1681-169a 16a0-16ea 1700-170c 170e-1711 1720-1731 1740-1751 1760-176c 176e-1770 1780-17b3
17d7 17dc 1820-1877 1880-18a8 18aa 18b0-18f5 1900-191c 1950-196d 1970-1974 1980-19ab 19c1-19c7
1a00-1a16 1a20-1a54 1aa7 1b05-1b33 1b45-1b4b 1b83-1ba0 1bae-1baf 1bba-1be5 1c00-1c23 1c4d-1c4f
1c5a-1c7d 1ce9-1cec 1cee-1cf1 1cf5-1cf6 1d00-1dbf 1e00-1f15 1f18-1f1d 1f20-1f45 1f48-1f4d 1f50-1f57
1f59 1f5b 1f5d 1f5f-1f7d 1f80-1fb4 1fb6-1fbc 1fbe 1fc2-1fc4 1fc6-1fcc 1fd0-1fd3 1fd6-1fdb 1fe0-1fec
1ff2-1ff4 1ff6-1ffc 2071 207f 2090-209c 2102 2107 210a-2113 2115 2119-211d 2124 2126 2128 212a-212d
212f-2139 213c-213f 2145-2149 214e 2183-2184 2c00-2c2e 2c30-2c5e 2c60-2ce4 2ceb-2cee 2cf2-2cf3
2d00-2d25 2d27 2d2d 2d30-2d67 2d6f 2d80-2d96 2da0-2da6 2da8-2dae 2db0-2db6 2db8-2dbe 2dc0-2dc6
2dc8-2dce 2dd0-2dd6 2dd8-2dde 2e2f 3005-3006 3031-3035 303b-303c 3041-3096 309d-309f 30a1-30fa
30fc-30ff 3105-312d 3131-318e 31a0-31ba 31f0-31ff 3400-4db5 4e00-9fcc a000-a48c a4d0-a4fd a500-a60c
a610-a61f a62a-a62b a640-a66e a67f-a697 a6a0-a6e5 a717-a71f a722-a788 a78b-a78e a790-a793 a7a0-a7aa
a7f8-a801 a803-a805 a807-a80a a80c-a822 a840-a873 a882-a8b3 a8f2-a8f7 a8fb a90a-a925 a930-a946
a960-a97c a984-a9b2 a9cf aa00-aa28 aa40-aa42 aa44-aa4b aa60-aa76 aa7a aa80-aaaf aab1 aab5-aab6
aab9-aabd aac0 aac2 aadb-aadd aae0-aaea aaf2-aaf4 ab01-ab06 ab09-ab0e ab11-ab16 ab20-ab26 ab28-ab2e
abc0-abe2 ac00-d7a3 d7b0-d7c6 d7cb-d7fb f900-fa6d fa70-fad9 fb00-fb06 fb13-fb17 fb1d fb1f-fb28
fb2a-fb36 fb38-fb3c fb3e fb40-fb41 fb43-fb44 fb46-fbb1 fbd3-fd3d fd50-fd8f fd92-fdc7 fdf0-fdfb
fe70-fe74 fe76-fefc ff21-ff3a ff41-ff5a ff66-ffbe ffc2-ffc7 ffca-ffcf ffd2-ffd7 ffda-ffdc
"""
# Marks and modifiers the 3.4.1 WORD rule accepts beside letters (its hand-written extra list).
_WORD_EXTRA_HEX = """
ad 2c2-2c5 2d2-2df 2e5-2eb 2ed 2ef-36f 375 378-379 384-385 3f6 483-487 55a-55f 591-5bd 5bf 5c1-5c2
5c4-5c5 5c7 615-61a 64b-65e 670 6d6-6e4 6e7-6ed 6fd-6fe 70f 711 730-74c 7a6-7b0 7eb-7f3 900-903 93c
93e-94e 951-955 962-963 981-983 9bc 9be-9c4 9c7-9c8 9cb-9cd 9d7 9e2-9e3 a01-a03 a3c a3e-a4f a81-a83
abc abe-acf b82 bbe-bc2 bc6-bc8 bca-bcd c01-c03 c3e-c56 d3e-d44 d46-d48 e31 e34-e3a e47-e4e eb1
eb4-ebc ec8-ecd
"""
# [:digit:] (Java 7 Character.isDigit, BMP) plus NKo digits, as the jar has them.
_DIGIT_HEX = """
30-39 660-669 6f0-6f9 7c0-7c9 966-96f 9e6-9ef a66-a6f ae6-aef b66-b6f be6-bef c66-c6f ce6-cef
d66-d6f e50-e59 ed0-ed9 f20-f29 1040-1049 1090-1099 17e0-17e9 1810-1819 1946-194f 19d0-19d9
1a80-1a89 1a90-1a99 1b50-1b59 1bb0-1bb9 1c40-1c49 1c50-1c59 a620-a629 a8d0-a8d9 a900-a909 a9d0-a9d9
aa50-aa59 abf0-abf9 ff10-ff19
"""


def _intervals(hex_ranges: str) -> list[tuple[int, int]]:
    """Code point intervals from 'a-b c ...' hex ranges."""
    out = []
    for item in hex_ranges.split():
        lo, _, hi = item.partition("-")
        out.append((int(lo, 16), int(hi or lo, 16)))
    return out


def _rules(letter: str, word_extra: str, digit: str) -> tuple[list[tuple[str, str | None, str]], str]:
    """The lexer's rules in its order: (token regex, trailing-context regex or None, action).

    Also returns a regex of the words that keep their final period (abbreviations, acronyms).

    letter, word_extra and digit are the bodies of the three big character classes. Macros keep
    their JFlex names. The lexer is caseless for literal text only, never for character
    classes, and only pairs a letter with its own upper/lower case, hence (?ai:...) (ASCII
    case folding) around literals and explicit classes elsewhere. Alternatives are ordered so
    that Python's first match is the rule's longest match.

    Actions: keep / soft (drop soft hyphens) / amp (&amp; -> &) / quote<, quote> (LaTeX
    quotes, opening or closing) / nbsp (spaces -> U+00A0) / phone / paren / dash / frac /
    currency / skip / nl / push2, push3 (hand back n characters) / dup (hand back the final
    period) / acronym (dup, but "X." becomes "X" + ".") / "=text" (replace by text).
    """
    LET = f"[{letter}]"
    DIG = f"[{digit}]"
    ALNUM = f"[{letter}{digit}]"
    SPLET = r"&[aeiouAEIOU](?ai:acute|grave|uml);"  # HTML accented vowels count as letters
    LETTER = f"(?:[{letter}{word_extra}]|{SPLET})"
    WORD = f"{LETTER}(?:{LETTER}|{DIG})*(?:[.!?]{LETTER}(?:{LETTER}|{DIG})*)*"
    SPACE = r"[ \t\xa0\u2000-\u200a\u3000]"
    NEWLINE = r"(?:\r\n?|[\n\x0b\x0c\x85\u2028\u2029])"
    SPACENL = f"(?:{SPACE}|{NEWLINE})"
    APOS = r"(?:['\x92\u2019]|&(?ai:apos);)"
    APOSETC = rf"(?:{APOS}|[`\x91\u2018\u201b])"
    HYPHEN = r"[-_\u058a\u2010\u2011]"
    INSENTP = r"[,;:\u3001]"
    REDAUX = rf"{APOS}(?:[msdMSD]|(?ai:re|ve|ll))"
    SWORD = r"[A-Za-z\xad]*[A-MO-Za-mo-z]\xad*"
    SREDAUX = rf"(?ai:n){APOSETC}(?ai:t)"
    APOWORD = (rf"{APOS}(?ai:n){APOS}?|[lLdDjJ]{APOS}|(?ai:dunkin|somethin|ol){APOS}|{APOS}(?ai:em)"
               rf"|[A-HJ-XZn]{APOSETC}{LET}{{2,}}|{APOS}[2-9]0(?ai:s)|{APOS}(?ai:till?)"
               rf"|{LET}+[aeiouyAEIOUY]{APOSETC}[aeiouA-Z]{LET}*|{APOS}(?ai:cause)"
               r"|(?ai:cont'd\.?|nor'easter|c'mon|e'er|s'mores|ev'ry|li'l|nat'l)"
               rf"|(?ai:o){APOSETC}(?ai:o)")
    NUM = rf"(?:{DIG}*(?:[.:,\xad\u066b\u066c]{DIG}+)+|{DIG}+)"
    FRAC = rf"(?:{DIG}{{1,4}}[- \xa0])?{DIG}{{1,4}}(?:\\?/|\u2044){DIG}{{1,4}}"
    ACRO_SPECIAL = (r"(?ai:u\.s\.-(?:u\.s\.s\.r|u\.k)|(?:canada|sino|korean|eu|japan|non)-u\.s)")
    ACRO = rf"(?:{ACRO_SPECIAL}|[A-Za-z](?:\.[A-Za-z])*)"
    ACRO2 = rf"(?:{ACRO_SPECIAL}|[A-Za-z](?:\.[A-Za-z])+)"
    THING = rf"(?:[dDoOlL]{APOSETC}{ALNUM})?{ALNUM}+(?:{HYPHEN}(?:[dDoOlL]{APOSETC}{ALNUM})?{ALNUM}+)*"
    THINGA = r"[A-Z]+(?:(?:&(?ai:amp);|[+&])[A-Z]+)+"
    THING3 = r"[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\?/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}"
    HTHING = rf"[A-Za-z0-9][A-Za-z0-9.,\xad]*(?:-(?:{ACRO2}\.|[A-Za-z0-9\xad]+))+"
    FULLURL = r"(?ai:https?)://[^ \t\n\f\r\"<>|(){}]+[^ \t\n\f\r\"<>|.!?(){},-]"
    # The generic-domain label class has ",-_" in it, a range that also excludes digits and capitals.
    LIKELYURL = (r"(?:(?ai:www)\.(?:[^ \t\n\f\r\"<>|.!?(){},]+\.)+[a-zA-Z]{2,4}"
                 r"|(?:[^ \t\n\f\r\"`'<>|.!?(){}\x2c-\x5f$]+\.)+(?ai:com|net|org|edu))"
                 r"(?:/[^ \t\n\f\r\"<>|()]+[^ \t\n\f\r\"<>|.!?(){},-])?")
    EMAIL = (r"(?:<|&(?ai:lt);)?[a-zA-Z0-9][^ \t\n\f\r\"<>|(){}\xa0]*@(?:[^ \t\n\f\r\"<>|(){}.\xa0]+\.)*"
             r"[^ \t\n\f\r\"<>|(){}.\xa0]+(?:>|&(?ai:gt);)?")
    FILENAME = (rf"(?:{LETTER}|{DIG})+(?:\.(?:{LETTER}|{DIG})+)*\.(?ai:bat|bmp|class|cgi|cpp|c|dll|docx|doc"
                r"|exe|gif|gz|html|htm|h|jar|java|jpeg|jpg|mov|mp3|pdf|php|pl|png|ppt|ps|py|sql|tar|txt|wav"
                r"|xml|x|zip)")
    ABBREV1 = (r"(?:(?ai:jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec|mon|tues|tue|wed|thurs|thu|fri"
               r"|ala|ariz|calif|colo|conn|ct|dak|fla|ga|ind|kans|kan|ky|md|mich|minn|mo|mont|neb|nev"
               r"|okla|penn|tenn|va|vt|wisc|wis|wyo|inc|cos|co|corp)|(?ai:pp?t)[ye](?ai:s)?|(?ai:ltd"
               r"|plc|rt|bancorp|bhd|assn|univ|intl|sys|tel|est|ext|sq|jr|sr|bros|ed\.d|ph\.d|blvd|rd"
               r"|esq|etc|al|seq|bldg)|A(?ai:z|rk)|D(?ai:el)|I(?ai:ll)|L(?ai:a)|M(?ai:ass|iss)|O(?ai:re)"
               r"|P(?ai:a)|T(?ai:ex)|W(?ai:ash))\.")
    ABBREV4 = (rf"(?:{ACRO}|(?ai:a\.k\.a|mrs|mr|ms|drs|dr|profs|prof|sens|sen|reps|rep|attys|atty|lt|col"
               r"|gen|messrs|govs|gov|adm|rev|maj|sgt|cpl|pvt|mt|capt|ste|st|ave|pres|lieut|hon|brig"
               r"|comdr|cmdr|pfc|spc|supts|supt|det|ft|adj|adv|asst|assoc|ens|insp|mlle|mme|msgr|sfc|vs"
               r"|alex|wm|jos|cie|cf|treas|ph|invt|elec|natl|dept)|(?ai:m)[ft](?ai:g)|M(?ai:iss))")
    ABBREV3 = r"(?ai:ca|figs|fig|prop|nos|no|art|pp|op)\."  # kept only before a digit
    PHONE = (r"(?:\([0-9]{2,3}\)[ \xa0]?|(?:\+\+?)?(?:[0-9]{2,4}[- \xa0])?[0-9]{2,4}[- \xa0])"
             r"[0-9]{3,4}[- \xa0]?[0-9]{3,5}|(?:(?:\+\+?)?[0-9]{2,4}\.)?[0-9]{2,4}\.[0-9]{3,4}\.[0-9]{3,5}")
    # Tags; a quoted attribute value may hold any character, line breaks included.
    SGML = (r"<(?:[!?][A-Za-z-][^>\r\n]*|[A-Za-z][A-Za-z0-9_:.-]*(?: +[A-Za-z][A-Za-z0-9_:.-]*"
            r"(?: *= *(?:'[^']*'|\"[^\"]*\"))?)* */?|/[A-Za-z][A-Za-z0-9_:.-]*) *>")
    SENTEND = f"{SPACENL}(?:{SPACENL}|[A-Z]|{SGML})"
    # Words after which "X." is taken as a one-letter token plus a sentence-final period.
    ACRONYM_NEXT = (rf"{SPACENL}+(?:A(?ai:bout|ccording|dditionally|fter|n|s|t)?|B(?ai:ut)|E(?ai:arlier)"
                    r"|H(?ai:e|er|ere|owever)|I(?ai:[fnt])|L(?ai:ast)|M(?ai:any|ore|r\.|s\.)|N(?ai:ow)"
                    r"|O(?ai:nce|ne|ther|ur)|S(?ai:he|ince|o|ome|uch)"
                    r"|T(?ai:hat|he|heir|hen|here|hese|hey|his)|W(?ai:e|hen|hile|hat)|Y(?ai:et|ou)"
                    rf"|{SGML}){SPACENL}")
    QUOTES = (r"(?:&(?ai:apos);|''|[`\u2018\u2019\u201a\u201b\u201c\u201d\x91\x92\x93\x94\u201e\u201f"
              r"\u2039\u203a\xab\xbb]{1,2}|['\x92])")
    DBLQUOT = r"(?:\"|&(?ai:quot);)"
    MISCSYMBOL = ("[+%&~^|\\\\\xa6-\xa9\xac\xae-\xba\xd7\xf7\u0387\u05be\u05c0\u05c3\u05c6\u05f3\u05f4"
                  "\u0600-\u0603\u0606-\u060a\u060c\u0614\u061b\u061e\u066a\u066d\u0703-\u070d\u07f6-\u07f8"
                  "\u0964\u0965\u0e4f\u1fbd\u2016\u2017\u2020-\u2023\u2030-\u2038\u203b\u203e-\u2042\u2044"
                  "\u207a-\u207f\u208a-\u208e\u2100-\u214f\u2190-\u21ff\u2200-\u2bff\u3012\u30fb"
                  "\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]")

    PTY = r"(?:(?ai:pt)[eyEY]|(?ai:co))\."
    DOTTED = f"{ACRO}\\.|{ABBREV3}|{PTY}|{ABBREV1}|{ABBREV4}\\."
    return [
        # programming languages, assimilations, tags, entities
        (r"(?ai:c\+\+|[cf]#)", None, "keep"),
        (r"(?ai:cannot|'twas)", None, "push3"),  # can not, 't was
        (r"(?ai:'tis|gonna|gotta|lemme|gimme|wanna)", None, "push2"),  # gon na, ...
        (SGML, None, "nbsp"),
        (r"&(?ai:md|mdash|ndash);|[\x96\x97\u2013-\u2015]", None, "=--"),
        (r"&(?ai:amp);", None, "amp"),
        (r"&(?:(?ai:ht|tl|ur|lr|qc|ql|qr|odq|cdq)|#[0-9]+);", None, "keep"),
        # words, words before a clitic, apostrophe words, web addresses
        (WORD, REDAUX, "soft"),
        (SWORD, SREDAUX, "soft"),
        (WORD, None, "soft"),
        (APOWORD, None, "keep"),
        (rf"(?ai:y){APOS}", LET, "keep"),
        (FULLURL, None, "keep"),
        (LIKELYURL, None, "keep"),
        (EMAIL, None, "keep"),
        (rf"@[a-zA-Z_][a-zA-Z_0-9]*|#{LETTER}+", None, "keep"),
        # clitics, dates, numbers, fractions, treebank escapes, currency
        (REDAUX, "[^A-Za-z]", "quote>"),
        (SREDAUX, "[^A-Za-z]", "quote>"),
        (rf"{DIG}{{1,2}}[-/]{DIG}{{1,2}}[-/]{DIG}{{2,4}}", None, "keep"),
        (rf"[-+]?{NUM}", None, "soft"),
        (r"[\u207a\u207b\u208a\u208b]?(?:[\u2070\xb9\xb2\xb3\u2074-\u2079]+|[\u2080-\u2089]+)", None, "keep"),
        (FRAC, None, "nbsp"),
        (r"[\xbc\xbd\xbe\u2153-\u215e]", None, "frac"),
        (rf"-(?ai:rrb|lrb|rcb|lcb|rsb|lsb)-|(?ai:c\.d\.s|pro-|anti-|s(?:&amp;|&)p-500|s(?:&amp;|&)ls)"
         rf"|(?ai:cap){APOS}(?ai:n)|(?ai:c){APOS}(?ai:est)", None, "amp"),
        (THING3, None, "keep"),
        (r"[A-Z]*\$|#", None, "keep"),
        (r"[\xa2-\xa5\x80\u20a0\u20ac\u060b\u0e3f\u20a4\uffe0\uffe1\uffe5\uffe6]", None, "currency"),
        # acronyms and abbreviations (with the contexts that decide their final period)
        (rf"{ACRO}\.", ACRONYM_NEXT, "acronym"),
        (ABBREV3, rf"{SPACENL}?{DIG}", "keep"),
        (PTY, rf"{SPACE}(?ai:ltd|lim)", "keep"),
        (ABBREV1, SENTEND, "dup"),
        (ABBREV1, r"[^\n][^\n]|\n[^\n]|[^\n]\n|\n\n", "keep"),
        (ABBREV1, None, "dup"),
        (rf"{ABBREV4}\.", None, "keep"),
        (ABBREV4, SPACE, "keep"),
        (ACRO, SPACENL, "keep"),
        (rf"{APOS}[0-9][0-9]", SPACENL, "keep"),
        (FILENAME, rf"(?:{SPACENL}|[.?!,])", "keep"),
        (rf"{WORD}\.", INSENTP, "soft"),
        # phone numbers, double quotes, brackets, smileys, dashes, punctuation
        (PHONE, None, "phone"),
        (DBLQUOT, "[A-Za-z0-9$]", "quote<"),
        (DBLQUOT, None, "quote>"),
        ("\x7f", None, "skip"),
        (r"<|&(?ai:lt);", None, "=<"),
        (r">|&(?ai:gt);", None, "=>"),
        (r"[<>]?[:;=][-o*']?[()DPdpO\\{@|\[\]]", "[^A-Za-z0-9]", "paren"),  # smileys
        (r"[\^x=~<>]\.\[\^x=~<>]|[-\^x=~<>']_[-\^x=~<>']|\([-\^x=~<>'][_.]?[-\^x=~<>']\)"
         r"|\([\^x=~<>']-[\^x=~<>'`]\)", None, "paren"),  # smileys like ^_^ and (^-^)
        (r"\{", None, "=-LCB-"),
        (r"\}", None, "=-RCB-"),
        (r"\[", None, "=-LSB-"),
        (r"\]", None, "=-RSB-"),
        (r"\(", None, "=-LRB-"),
        (r"\)", None, "=-RRB-"),
        (r"-+", None, "dash"),
        (r"\.{3,5}|(?:\.[ \xa0]){2,4}\.|[\x85\u2026]", None, "=..."),
        (r"@+|#+|_+", None, "keep"),
        (r"\*+|(?:\\\*){1,3}", None, "keep"),
        (INSENTP, None, "keep"),
        (r"[?!]+", None, "keep"),
        (r"[.\xa1\xbf\u037e\u0589\u061f\u06d4\u0700-\u0702\u07fa\u3002]", None, "keep"),
        (r"=", None, "keep"),
        (r"/", None, "keep"),
        # hyphenated and compound words
        (rf"{HTHING}\.", INSENTP, "soft"),
        (HTHING, None, "soft"),
        (rf"{THING}\.", INSENTP, "keep"),
        (THING, None, "keep"),
        (rf"{THINGA}\.", INSENTP, "amp"),
        (THINGA, None, "amp"),
        # quotes, symbols, blanks, line breaks, anything else
        ("'", r"[A-Za-z][^ \t\n\r\xa0]", "quote<"),
        (REDAUX, None, "quote>"),
        (SREDAUX, None, "quote>"),
        (QUOTES, None, "quote>"),
        (r"<<|>>", None, "keep"),
        (MISCSYMBOL, None, "keep"),
        (r"\x00|[ \t\xa0\u2000-\u200a\u3000]+|[\u200b\u200e\u200f\ufeff]|&(?ai:nbsp);", None, "skip"),
        (NEWLINE, None, "nl"),
        (r"[^\n]", None, "skip"),  # untokenizable: deleted (the default "firstDelete")
    ], DOTTED


# --- Character classes, as JFlex builds them: characters that no rule tells apart form one
# class, and each class gets a code below 256 (an ASCII character is a class of its own and
# keeps its code). Text is matched in these codes and the rules are rewritten into them, so
# the compiled patterns hold only small Latin-1 classes: they compile and run fast. For this,
# templates of the rules (one placeholder character per big class) are parsed once.
_PLACEHOLDERS = ("\ue000", "\ue001", "\ue002")
_BIG_CLASSES = {ord(p): _intervals(h) for p, h in
                zip(_PLACEHOLDERS, (_LETTER_HEX, _WORD_EXTRA_HEX, _DIGIT_HEX), strict=True)}
_SOURCES, _DOTTED_SOURCE = _rules(*_PLACEHOLDERS)
_PARSED = {p: _parser.parse(p) for rule in _SOURCES for p in rule[:2] if p}
_PARSED[_DOTTED_SOURCE] = _parser.parse(_DOTTED_SOURCE)


def _char_sets(items: list, out: list[list[tuple[int, int]]]) -> None:
    """Collect the character sets a parsed template tells apart (literals and classes)."""
    for op, av in items:
        if op in (_sre.LITERAL, _sre.NOT_LITERAL):
            out.append(_BIG_CLASSES.get(av, [(av, av)]))
        elif op is _sre.IN:
            ranges = []
            for kind, value in av:
                if kind is _sre.LITERAL:
                    ranges += _BIG_CLASSES.get(value, [(value, value)])
                elif kind is _sre.RANGE:
                    ranges.append(value)
            out.append(ranges)
        elif op is _sre.SUBPATTERN:
            _char_sets(av[3], out)
        elif op is _sre.BRANCH:
            for alternative in av[1]:
                _char_sets(alternative, out)
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
            _char_sets(av[2], out)


def _partition() -> tuple[list[int], list[int]]:
    """Split the BMP into runs of code points that every character set treats alike.

    Returns each run's first code point and the code of its class.
    """
    found: list[list[tuple[int, int]]] = [[(c, c)] for c in range(128)]
    for parsed in _PARSED.values():
        _char_sets(parsed, found)
    sets = list({tuple(s) for s in found} | {tuple(r) for r in _BIG_CLASSES.values()})
    cuts = sorted({0} | {lo for s in sets for lo, _ in s} | {hi + 1 for s in sets for _, hi in s} - {0x10000})
    members: list[list[int]] = [[] for _ in cuts]
    for k, ranges in enumerate(sets):
        for lo, hi in ranges:
            for run in range(bisect.bisect_left(cuts, lo), bisect.bisect_right(cuts, hi)):
                members[run].append(k)
    code_of: dict[tuple[int, ...], int] = {}
    codes = []
    for start, ids in zip(cuts, members, strict=True):
        if tuple(ids) not in code_of:
            code_of[tuple(ids)] = start if start < 128 else 128 + sum(c >= 128 for c in code_of.values())
        codes.append(code_of[tuple(ids)])
    assert max(codes) < 256, "more character classes than Latin-1 codes"
    return cuts, codes


_RUN_STARTS, _RUN_CODES = _partition()
_ALL_CODES = frozenset(_RUN_CODES)


def _run_codes(lo: int, hi: int) -> set[int]:
    """Codes of the code points lo..hi."""
    return set(_RUN_CODES[bisect.bisect_right(_RUN_STARTS, lo) - 1:bisect.bisect_left(_RUN_STARTS, hi + 1)])


_BIG_CODES = {p: set().union(*(_run_codes(lo, hi) for lo, hi in ranges))
              for p, ranges in _BIG_CLASSES.items()}


@functools.cache
def _codes(lo: int, hi: int) -> frozenset[int]:
    """Codes of the template characters lo..hi (a placeholder stands for its big class)."""
    return frozenset(_BIG_CODES[lo] if lo == hi and lo in _BIG_CODES else _run_codes(lo, hi))


@functools.cache
def _class(codes: frozenset[int]) -> str:
    """A regex class of the codes, runs of three or more written as ranges."""
    parts, ordered = [], sorted(codes)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        lo, hi = re.escape(chr(ordered[i])), re.escape(chr(ordered[j]))
        parts.append(lo if i == j else lo + hi if j == i + 1 else lo + "-" + hi)
        i = j + 1
    return "[" + "".join(parts) + "]"


def _item_codes(op: object, av: object, icase: bool) -> set[int]:
    """Codes a single-character template item (literal or class) matches."""
    negate = op is _sre.IN and av[0][0] is _sre.NEGATE
    codes: set[int] = set()
    for kind, value in [(op, av)] if op is _sre.LITERAL else av[negate:]:
        codes |= _codes(value, value) if kind is _sre.LITERAL else _codes(*value)
    if icase:
        codes |= {ord(chr(c).swapcase()) for c in codes if chr(c).isascii() and chr(c).isalpha()}
    return set(_ALL_CODES) - codes if negate else codes


def _emit(items: list) -> str:
    """Regex source of a parsed template, with every character replaced by its class code."""
    out = []
    for op, av in items:
        if op in (_sre.LITERAL, _sre.NOT_LITERAL, _sre.IN):
            if op is _sre.NOT_LITERAL:
                codes = set(_ALL_CODES) - _codes(av, av)
            else:
                codes = _item_codes(op, av, False)
            out.append(re.escape(chr(min(codes))) if len(codes) == 1 else _class(frozenset(codes)))
        elif op is _sre.BRANCH:
            out.append("(?:" + "|".join(_emit(alternative) for alternative in av[1]) + ")")
        elif op is _sre.SUBPATTERN:
            out.append(("(?ai:" if av[1] & re.I else "(?:") + _emit(av[3]) + ")")
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
            lo, hi, sub = av
            count = f"{{{lo},{'' if hi is _sre.MAXREPEAT else hi}}}"
            count = {"{0,}": "*", "{1,}": "+", "{0,1}": "?"}.get(count, count)
            body = _emit(sub)
            if not (len(sub) == 1 and sub[0][0] in (_sre.LITERAL, _sre.NOT_LITERAL, _sre.IN)):
                body = "(?:" + body + ")"
            out.append(body + count + "?" * (op is _sre.MIN_REPEAT))
        else:
            raise AssertionError(op)
    return "".join(out)


def _first_codes(items: list, icase: bool = False) -> tuple[set[int], bool]:
    """Codes a parsed template can start with, and whether it can match the empty string."""
    codes: set[int] = set()
    for op, av in items:
        if op is _sre.SUBPATTERN:
            more, empty = _first_codes(av[3], icase or bool(av[1] & re.I))
        elif op is _sre.BRANCH:
            more, empty = set(), False
            for alternative in av[1]:
                alt_codes, alt_empty = _first_codes(alternative, icase)
                more |= alt_codes
                empty |= alt_empty
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
            more, empty = _first_codes(av[2], icase)
            empty |= av[0] == 0
        elif op in (_sre.LITERAL, _sre.IN):
            more, empty = _item_codes(op, av, icase), False
        else:
            more, empty = set(_ALL_CODES), False
        codes |= more
        if not empty:
            return codes, False
    return codes, True


_EMITTED = {p: _emit(parsed) for p, parsed in _PARSED.items()}
# The rules in class codes: (token regex, context regex or None, action).
_RULES = [(_EMITTED[tok], _EMITTED[ctx] if ctx else None, action) for tok, ctx, action in _SOURCES]
# Per rule: the class codes it can start with, so a scan only tries rules that can start there.
_FIRST = [frozenset(_first_codes(_PARSED[tok])[0]) for tok, _, _ in _SOURCES]


def tables() -> dict:
    """What the tokenizer needs at run time, as JSON-ready values."""
    return {
        "rules": [list(rule) for rule in _RULES],
        "first": [sorted(codes) for codes in _FIRST],
        "run_starts": _RUN_STARTS,
        "run_codes": _RUN_CODES,
        "dotted": _EMITTED[_DOTTED_SOURCE],
    }
