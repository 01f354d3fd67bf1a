package domain

// Runtime is a language a sandbox can run, with the versions it offers.
type Runtime struct {
	Language       string   `json:"language"`
	Versions       []string `json:"versions"`
	DefaultVersion string   `json:"default_version"`
	FileExtension  string   `json:"file_extension"`
}

// Catalog is the set of runtimes with the platform's limits.
type Catalog struct {
	Runtimes      []Runtime `json:"runtimes"`
	DefaultLimits Limits    `json:"default_limits"`
	MaxLimits     Limits    `json:"max_limits"`
}

// Resolve picks the runtime and version for a request, defaulting both.
func (c Catalog) Resolve(language, version string) (string, string, error) {
	if language == "" {
		language = "python"
	}
	for _, r := range c.Runtimes {
		if r.Language != language {
			continue
		}
		if version == "" {
			return language, r.DefaultVersion, nil
		}
		for _, v := range r.Versions {
			if v == version {
				return language, v, nil
			}
		}
		return "", "", Errorf(EUNPROCESSABLE, "%s version %q is not available (have %v)", language, version, r.Versions)
	}
	return "", "", Errorf(EUNPROCESSABLE, "language %q is not available", language)
}
