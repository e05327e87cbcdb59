untrusted comment: signature from creto key e2cae88951a018d5 (ecdsa-p256)
creto-sig-v1 ecdsa-p256 e2cae88951a018d5
szGnuXDvyYzqysW1kvToku+cLhS2Yk/nA6zwgCToyaOIfQoJPauhCYR0B1Oy9s8D3P91TetMek9mTdOJ/VtMUg==
