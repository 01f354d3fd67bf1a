package web

import (
	"net/http"
	"strings"
	"testing"

	"github.com/integr8scode/integr8scode/domain"
)

// TestSubmitRefusesWhatItWouldRewrite sends bodies that encoding/json alone
// would accept by changing them, and bodies that are not JSON at all: each
// is refused with its status, and messages speak JSON, not Go.
func TestSubmitRefusesWhatItWouldRewrite(t *testing.T) {
	a := startAPI(t, nil)
	cases := []struct {
		name, body, contentType string
		status                  int
		code                    string
	}{
		{"ErrDuplicateKeys", `{"script":"print(1)","script":"print(2)"}`, "", 400, domain.EINVALID},
		{"ErrDuplicateKeysOtherCase", `{"script":"print(1)","Script":"print(2)"}`, "", 400, domain.EINVALID},
		{"ErrDuplicateNestedKeys", `{"script":"1","limits":{"timeout_ms":1000,"timeout_ms":2000}}`, "", 400, domain.EINVALID},
		{"ErrDuplicateKeysByEscape", `{"script":"1","\u0073cript":"2"}`, "", 400, domain.EINVALID},
		{"ErrInvalidUTF8", "{\"script\":\"print('\xff')\"}", "", 422, domain.EUNPROCESSABLE},
		{"ErrInvalidUTF8InStdin", "{\"script\":\"1\",\"stdin\":\"\xc3\x28\"}", "", 422, domain.EUNPROCESSABLE},
		{"ErrLoneHighSurrogate", `{"script":"print('\ud800')"}`, "", 422, domain.EUNPROCESSABLE},
		{"ErrLoneLowSurrogate", `{"script":"print('\udc00')"}`, "", 422, domain.EUNPROCESSABLE},
		{"ErrReversedSurrogates", `{"script":"print('\udc00\ud800')"}`, "", 422, domain.EUNPROCESSABLE},
		{"ErrZeroTimeout", `{"script":"1","limits":{"timeout_ms":0}}`, "", 422, domain.EUNPROCESSABLE},
		{"ErrZeroMemory", `{"script":"1","limits":{"memory_bytes":0}}`, "", 422, domain.EUNPROCESSABLE},
		{"ErrNegativeCPU", `{"script":"1","limits":{"cpu_millicores":-5}}`, "", 422, domain.EUNPROCESSABLE},
		{"ErrWrongType", `{"script":"1","limits":{"timeout_ms":"5s"}}`, "", 400, domain.EINVALID},
		{"ErrLimitsNotObject", `{"script":"1","limits":5}`, "", 400, domain.EINVALID},
		{"ErrNotAnObject", `["print(1)"]`, "", 400, domain.EINVALID},
		{"ErrTrailingData", `{"script":"1"} {}`, "", 400, domain.EINVALID},
		{"ErrTextPlain", `{"script":"print(1)"}`, "text/plain", 415, eUnsupportedMediaType},
		{"ErrForm", `script=print(1)`, "application/x-www-form-urlencoded", 415, eUnsupportedMediaType},
		{"ErrNoContentType", `{"script":"print(1)"}`, "-", 415, eUnsupportedMediaType},
		{"ErrOtherCharset", `{"script":"print(1)"}`, "application/json; charset=latin1", 415, eUnsupportedMediaType},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, a.URL+"/api/v1/executions", strings.NewReader(c.body))
			switch c.contentType {
			case "":
				req.Header.Set("Content-Type", "application/json")
			case "-":
			default:
				req.Header.Set("Content-Type", c.contentType)
			}
			ans := send(t, req)
			if ans.Status != c.status || ans.errorCode(t) != c.code {
				t.Fatalf("got %d %s", ans.Status, ans.Body)
			}
			for _, goName := range []string{"web.", "domain.", "int64", "string", "struct", "json:"} {
				if strings.Contains(ans.message(t), goName) {
					t.Fatalf("message speaks Go (%q): %s", goName, ans.Body)
				}
			}
		})
	}
	t.Run("OK charset utf-8 and omitted limits mean the defaults", func(t *testing.T) {
		ans := call(t, http.MethodPost, a.URL+"/api/v1/executions", `{"script":"print('\u00e9 \ud83d\ude00')","limits":{"timeout_ms":1000}}`,
			"Content-Type", "application/json; charset=UTF-8")
		if ans.Status != http.StatusAccepted {
			t.Fatalf("got %d %s", ans.Status, ans.Body)
		}
		e := decodeExecution(t, ans)
		if e.Script != "print('é 😀')" || e.Limits != (domain.Limits{TimeoutMs: 1000, MemoryBytes: domain.DefaultLimits.MemoryBytes, CPUMillicores: domain.DefaultLimits.CPUMillicores}) {
			t.Fatalf("stored %q with %+v", e.Script, e.Limits)
		}
	})
	t.Run("ErrMessagesNameTheField", func(t *testing.T) {
		ans := call(t, http.MethodPost, a.URL+"/api/v1/executions", `{"script":"1","limits":{"timeout_ms":1.5}}`)
		if !strings.Contains(ans.message(t), `"limits.timeout_ms" must be an integer`) {
			t.Fatalf("got %s", ans.Body)
		}
		ans = call(t, http.MethodPost, a.URL+"/api/v1/executions", `{"script":"1","limits":{"timeout_ms":0}}`)
		if !strings.Contains(ans.message(t), "limits.timeout_ms must be positive") {
			t.Fatalf("got %s", ans.Body)
		}
	})
}
