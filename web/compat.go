package web

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/integr8scode/integr8scode/domain"
)

// The original product's API: POST /execute with {script, lang, lang_version}
// answering {execution_id, status}, and GET /executions/{id}/result with its
// result shape. Kept so its clients work unchanged.

type compatExecuteRequest struct {
	Script      string `json:"script"`
	Lang        string `json:"lang"`
	LangVersion string `json:"lang_version"`
}

type compatExecuteResponse struct {
	ExecutionID string        `json:"execution_id"`
	Status      domain.Status `json:"status"`
}

type compatUsage struct {
	WallSeconds  float64 `json:"execution_time_wall_seconds"`
	CPUJiffies   int64   `json:"cpu_time_jiffies"`
	ClkTckHertz  int     `json:"clk_tck_hertz"`
	PeakMemoryKB int64   `json:"peak_memory_kb"`
}

type compatResult struct {
	ExecutionID   string        `json:"execution_id"`
	Status        domain.Status `json:"status"`
	Stdout        *string       `json:"stdout"`
	Stderr        *string       `json:"stderr"`
	Lang          string        `json:"lang"`
	LangVersion   string        `json:"lang_version"`
	ResourceUsage *compatUsage  `json:"resource_usage"`
	ExitCode      *int          `json:"exit_code"`
	ErrorType     *string       `json:"error_type"`
}

func (s *server) handleCompatExecute() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req compatExecuteRequest
		if err := decodeJSON(w, r, &req); err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		e, _, err := s.submit(r, submitRequest{Script: req.Script, Language: req.Lang, Version: req.LangVersion})
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		writeJSON(w, http.StatusOK, compatExecuteResponse{ExecutionID: e.ID, Status: e.Status})
	}
}

func (s *server) handleCompatResult() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		e, err := s.lookupFor(r, chi.URLParam(r, "id"))
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		if err := s.Content.Reveal(r.Context(), &e); err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		writeJSON(w, http.StatusOK, toCompatResult(e))
	}
}

func toCompatResult(e domain.Execution) compatResult {
	res := compatResult{ExecutionID: e.ID, Status: e.Status, Lang: e.Language, LangVersion: e.Version, ExitCode: e.ExitCode}
	if e.Status.Terminal() {
		res.Stdout, res.Stderr = &e.Output, &e.Errors
	}
	if u := e.ResourceUsage; u != nil {
		const hz = 100 // the original reported CPU time in jiffies at CLK_TCK 100
		res.ResourceUsage = &compatUsage{WallSeconds: float64(u.WallTimeMs) / 1000,
			CPUJiffies: u.CPUTimeMs / (1000 / hz), ClkTckHertz: hz, PeakMemoryKB: u.PeakMemoryBytes / 1024}
	}
	if e.Status == domain.StatusFailed {
		t := "script_error"
		if e.FailureReason == domain.VerdictSystemError {
			t = "system_error"
		}
		res.ErrorType = &t
	}
	return res
}
