package sigv4

import "testing"

func TestNormalizePath(t *testing.T) {
	for in, want := range map[string]string{
		"":                                     "/",
		"/":                                    "/",
		"//":                                   "/",
		"/./":                                  "/",
		"/.":                                   "/",
		"/..":                                  "/",
		"/../a":                                "/a",
		"/a/b/..":                              "/a",
		"/a/./b/":                              "/a/b/",
		"//example//":                          "/example/",
		"/example1/example2/../..":             "/",
		"/a/.b/..c/...":                        "/a/.b/..c/...",
		"/a%2E/%2E%2E/b":                       "/a%2E/%2E%2E/b", // escaped dots are not dot segments
		"/rustfs/admin/v3/kms/keys/my-key_1.x": "/rustfs/admin/v3/kms/keys/my-key_1.x",
	} {
		if got := normalizePath(in); got != want {
			t.Errorf("normalizePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCanonicalPathEncoding(t *testing.T) {
	for in, want := range map[string]string{
		"/a b/%7E~/$%24": "/a%20b/~~/%24%24",
		"/a%2Fb/c":       "/a%2Fb/c", // an escaped slash stays escaped
		"/a%2fb":         "/a%2Fb",
		"/%E2%82%AC+":    "/%E2%82%AC%2B",
	} {
		got, ok := appendS3Path(nil, in)
		if !ok || string(got) != want {
			t.Errorf("appendS3Path(%q) = %q, %v, want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"/%", "/%2", "/%zz", "/a%g0"} {
		if _, ok := appendS3Path(nil, bad); ok {
			t.Errorf("appendS3Path(%q) accepted an invalid escape", bad)
		}
	}
	if got := string(appendEscapedPath(nil, "/a%2Fb c/~")); got != "/a%252Fb%20c/~" {
		t.Errorf("appendEscapedPath = %q", got)
	}
}

func TestCanonicalQuery(t *testing.T) {
	s := getScratch()
	defer putScratch(s)
	for in, want := range map[string]string{
		"":                        "",
		"b=2&a=1":                 "a=1&b=2",
		"a=2&a=1&a=10":            "a=1&a=10&a=2",
		"lifecycle":               "lifecycle=",
		"a=1&&b":                  "a=1&b=",
		"a+b=c+d&e=%7e%2f":        "a%20b=c%20d&e=~%2F",
		"k=a/b&k=a-b":             "k=a%2Fb&k=a-b", // sorted after encoding
		"x=;&y=%3B":               "x=%3B&y=%3B",
		"X-Amz-Signature=abc&z=1": "X-Amz-Signature=abc&z=1", // header form keeps it
		"=v":                      "=v",
	} {
		got, err := s.appendCanonicalQuery(nil, in, false)
		if err != nil || string(got) != want {
			t.Errorf("canonical query %q = %q, %v, want %q", in, got, err, want)
		}
	}
	got, err := s.appendCanonicalQuery(nil, "X-Amz-Signature=abc&z=1&X-Amz-%53ignature=d", true)
	if err != nil || string(got) != "X-Amz-Signature=d&z=1" {
		t.Errorf("presigned canonical query = %q, %v", got, err)
	}
	for _, bad := range []string{"a=%", "a=%4", "%zz=1"} {
		if _, err := s.appendCanonicalQuery(nil, bad, false); err == nil {
			t.Errorf("query %q accepted", bad)
		}
	}
}

func TestAppendTrimmedValue(t *testing.T) {
	for in, want := range map[string]string{
		"  a   b  ":  "a b",
		"\ta \t b\t": "a \t b",
		"":           "",
		"   ":        "",
		"x":          "x",
	} {
		if got := string(appendTrimmedValue(nil, in)); got != want {
			t.Errorf("trim(%q) = %q, want %q", in, got, want)
		}
	}
}
