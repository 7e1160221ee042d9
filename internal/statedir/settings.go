package statedir

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sallyport/sallyport/internal/cloudlink"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
)

// SettingsFile is the connector's own settings in its state directory
// (mode 0600: it may hold the proxy password).
const SettingsFile = "connector.json"

// Settings are what an administrator sets on this machine.
type Settings struct {
	Proxy *ProxySettings `json:"proxy,omitempty"`
}

// ProxySettings is the outbound proxy to the cloud.
type ProxySettings struct {
	URL      string `json:"url"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	NoProxy  string `json:"no_proxy,omitempty"`
}

// LoadSettings reads connector.json; a missing file is empty settings.
func LoadSettings(dir string) (Settings, error) {
	var s Settings
	raw, err := os.ReadFile(filepath.Join(dir, SettingsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, problem.Newf(400, "settings_unreadable", "run the connector as the user that owns its state directory",
			"The connector's settings %s cannot be read (%v)", filepath.Join(dir, SettingsFile), err)
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, problem.Newf(400, "settings_damaged", "fix the file, or set the proxy again with 'sallyport connector proxy set'",
			"The connector's settings %s are not valid JSON (%v)", filepath.Join(dir, SettingsFile), err)
	}
	return s, nil
}

// SaveSettings writes connector.json with mode 0600.
func SaveSettings(dir string, s Settings) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return problem.Newf(400, "state_unwritable", "choose another --dir", "The connector cannot create %s (%v)", dir, err)
	}
	js, _ := json.MarshalIndent(s, "", "  ")
	if err := pki.WriteFileAtomic(filepath.Join(dir, SettingsFile), append(js, '\n'), 0o600); err != nil {
		return problem.Newf(400, "state_unwritable", "check the directory's permissions", "The connector cannot write %s (%v)", filepath.Join(dir, SettingsFile), err)
	}
	return nil
}

// EffectiveProxy is the proxy to reach the cloud with: the URL given on
// the command line if any, else the settings file's, else HTTPS_PROXY
// (with NO_PROXY); nil for none.
func EffectiveProxy(dir, flagURL string) (*cloudlink.Proxy, error) {
	s, err := LoadSettings(dir)
	if err != nil {
		return nil, err
	}
	if flagURL != "" {
		user, pass, noProxy := "", "", ""
		if s.Proxy != nil {
			user, pass, noProxy = s.Proxy.Username, s.Proxy.Password, s.Proxy.NoProxy
		}
		return cloudlink.ParseProxy(flagURL, user, pass, noProxy, "--proxy")
	}
	if s.Proxy != nil && s.Proxy.URL != "" {
		return cloudlink.ParseProxy(s.Proxy.URL, s.Proxy.Username, s.Proxy.Password, s.Proxy.NoProxy, SettingsFile)
	}
	return cloudlink.ProxyFromEnvironment()
}
