package cloud

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/alexedwards/argon2id"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
)

func (s *Server) handleListUsers(w http.ResponseWriter, r *http.Request, p *principal) error {
	us, err := s.store.ListUsers(r.Context(), p.Tenant.ID)
	if err != nil {
		return err
	}
	out := make([]api.User, 0, len(us))
	for _, u := range us {
		out = append(out, apiUser(u, p.Tenant))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleCreateUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireGlobalAdmin(p, "users"); err != nil {
		return err
	}
	var in api.CreateUserRequest
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	name, err := tenancy.CheckUserName("bad_user_name", in.Name, p.Tenant.Domain)
	if err != nil {
		return err
	}
	role := store.Role(in.Role)
	if !role.Valid() {
		return problem.Newf(http.StatusBadRequest, "bad_role", "use global-admin, app-admin or user", "%q is not a role", tenancy.Truncate(in.Role, 40))
	}
	if err := checkProfile(in.Email, in.DisplayName); err != nil {
		return err
	}
	if err := tenancy.CheckPassword(in.Password); err != nil {
		return err
	}
	hash, err := s.hashPasswordFor(r.Context(), sourceOf(r.RemoteAddr), in.Password)
	if err != nil {
		return err
	}
	u := store.User{ID: tenancy.NewID("u"), TenantID: p.Tenant.ID, Name: name, Role: role, PasswordHash: hash, Email: in.Email, DisplayName: in.DisplayName, CreatedAt: s.now().UTC()}
	if err := s.store.CreateUser(r.Context(), u); errors.Is(err, store.ErrConflict) {
		return problem.Newf(http.StatusConflict, "user_exists", "choose another name", "The user %s already exists", name)
	} else if err != nil {
		return err
	}
	if err := s.directoryChanged(r.Context()); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, apiUser(u, p.Tenant))
	return nil
}

// hashPasswordFor makes an argon2id hash for a request from source src,
// in a hashing slot of the sign-in guard.
func (s *Server) hashPasswordFor(ctx context.Context, src, p string) (hash string, err error) {
	if serr := s.signin.hash(ctx, src, func() { hash, err = argon2id.CreateHash(p, argon2id.DefaultParams) }); serr != nil {
		return "", serr
	}
	return hash, err
}

// maxDisplayName bounds a user's display name, in characters.
const maxDisplayName = 100

// checkProfile validates a user's email address and display name ("" for
// none).
func checkProfile(email, display string) error {
	if email != "" {
		a, err := mail.ParseAddress(email)
		if err != nil || a.Address != email || len(email) > 254 {
			return problem.Newf(http.StatusBadRequest, "bad_email", "give a plain address such as ann@contoso.com, without a name or angle brackets",
				"%q is not an email address", tenancy.Truncate(email, 80))
		}
	}
	if utf8.RuneCountInString(display) > maxDisplayName || !utf8.ValidString(display) || strings.IndexFunc(display, unicode.IsControl) >= 0 {
		return problem.Newf(http.StatusBadRequest, "bad_display_name", fmt.Sprintf("give at most %d characters on one line", maxDisplayName),
			"The display name %q cannot be used", tenancy.Truncate(display, 80))
	}
	return nil
}

// apiUser is u as the API shows it.
func apiUser(u store.User, t store.Tenant) api.User {
	return api.User{ID: u.ID, Name: u.Name, Role: string(u.Role), Tenant: t.Domain, Email: u.Email, DisplayName: u.DisplayName, Disabled: u.Disabled, CreatedAt: u.CreatedAt,
		MFAEnrolled: u.TOTPSecret != nil || !u.MFAEnrolledAt.IsZero(), External: u.External}
}

// userDetail is u with its second factor and user groups.
func (s *Server) userDetail(ctx context.Context, t store.Tenant, u store.User) (api.UserDetail, error) {
	gs, err := s.store.UserGroupsOf(ctx, t.ID, u.ID)
	if err != nil {
		return api.UserDetail{}, err
	}
	d := api.UserDetail{User: apiUser(u, t), MFAEnrolledAt: u.MFAEnrolledAt, UserGroups: make([]string, 0, len(gs))}
	for _, g := range gs {
		d.UserGroups = append(d.UserGroups, g.Name)
	}
	sort.Strings(d.UserGroups)
	return d, nil
}

// userToManage is the user a request names in its path ({name}), of the
// caller's tenant, for a Global Administrator only.
func (s *Server) userToManage(r *http.Request, p *principal) (store.User, error) {
	if err := requireGlobalAdmin(p, "users"); err != nil {
		return store.User{}, err
	}
	return s.userByName(r.Context(), p.Tenant, r.PathValue("name"))
}

// notYourself refuses an action on the caller's own account.
func notYourself(p *principal, u store.User, action string) error {
	if u.ID != p.User.ID {
		return nil
	}
	return problem.Newf(http.StatusConflict, "own_account", "ask another Global Administrator of "+p.Tenant.Domain+" to do it",
		"You cannot %s your own account (%s)", action, u.Name)
}

// notLastAdmin refuses an action that would leave the tenant without an
// enabled Global Administrator.
func (s *Server) notLastAdmin(ctx context.Context, t store.Tenant, u store.User, action string) error {
	if u.Role != store.RoleGlobalAdmin || u.Disabled {
		return nil
	}
	us, err := s.store.ListUsers(ctx, t.ID)
	if err != nil {
		return err
	}
	for _, o := range us {
		if o.ID != u.ID && o.Role == store.RoleGlobalAdmin && !o.Disabled {
			return nil
		}
	}
	return problem.Newf(http.StatusConflict, "last_global_admin", "make another user a Global Administrator first",
		"You cannot %s %s: it is the last Global Administrator of %s", action, u.Name, t.Domain)
}

// handleGetUser shows a user (GET /users/{name}).
func (s *Server) handleGetUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	u, err := s.userToManage(r, p)
	if err != nil {
		return err
	}
	d, err := s.userDetail(r.Context(), p.Tenant, u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// endSessions ends all of u's sessions (store and the gate's cache) because
// of what an administrator did, and returns how many ended.
func (s *Server) endSessions(ctx context.Context, p *principal, u store.User, what string) (int, error) {
	return s.endUserSessions(ctx, p.Tenant.ID, u.ID, u.Name, "the user was "+what+" by "+p.User.Name)
}

// directoryChanged makes a change of who may reach which application
// (users, memberships, assignments, pre-authentication) take effect at
// the edge from the next request on: the routing and directory snapshot
// is rebuilt.
func (s *Server) directoryChanged(ctx context.Context) error {
	return s.refreshRoutes(ctx)
}

// handleDeleteUser deletes a user with its sessions, API tokens,
// memberships and assignments (DELETE /users/{name}).
func (s *Server) handleDeleteUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	u, err := s.userToManage(r, p)
	if err != nil {
		return err
	}
	if err := notYourself(p, u, "delete"); err != nil {
		return err
	}
	if err := s.notLastAdmin(ctx, p.Tenant, u, "delete"); err != nil {
		return err
	}
	n, err := s.endSessions(ctx, p, u, "deleted")
	if err != nil {
		return err
	}
	if err := s.store.DeleteUser(ctx, p.Tenant.ID, u.ID); errors.Is(err, store.ErrNotFound) {
		return problem.Newf(http.StatusNotFound, "no_user", "list the users with 'sallyport admin user list'", "The user %s was deleted meanwhile", u.Name)
	} else if err != nil {
		return err
	}
	if err := s.directoryChanged(ctx); err != nil {
		return err
	}
	s.events.Event(eventlog.UserDeleted, fmt.Sprintf("User %s of %s was deleted by %s, with %d session%s, its memberships and assignments", u.Name, p.Tenant.Domain, p.User.Name, n, plural(n)),
		"tenant", p.Tenant.Domain, "member", u.Name, "sessions", fmt.Sprint(n), "user", p.User.Name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleUserAction disables, enables or resets the second factor of a user
// (POST /users/{name}/disable, /enable, /reset-mfa).
func (s *Server) handleUserAction(change string) apiFunc {
	return func(w http.ResponseWriter, r *http.Request, p *principal) error {
		ctx := r.Context()
		u, err := s.userToManage(r, p)
		if err != nil {
			return err
		}
		var note, what string
		n := 0
		switch change {
		case "disabled":
			if err := notYourself(p, u, "disable"); err != nil {
				return err
			}
			if err := s.notLastAdmin(ctx, p.Tenant, u, "disable"); err != nil {
				return err
			}
			u.Disabled = true
			if err := s.store.UpdateUser(ctx, u); err != nil {
				return err
			}
			what = "disabled"
			if n, err = s.endSessions(ctx, p, u, what); err != nil {
				return err
			}
			note = "the user " + u.Name + " is signed out everywhere and cannot sign in, to applications or to the admin API, until enabled again with 'sallyport admin user enable " + u.Name + "'"
		case "enabled":
			u.Disabled = false
			if err := s.store.UpdateUser(ctx, u); err != nil {
				return err
			}
			what = "enabled"
			note = "the user " + u.Name + " can sign in again"
		case "mfa-reset":
			if err := s.store.SetUserMFA(ctx, p.Tenant.ID, u.ID, nil, time.Time{}, nil); err != nil {
				return err
			}
			what = "made to enrol a second factor again"
			if n, err = s.endSessions(ctx, p, u, what); err != nil {
				return err
			}
			u.TOTPSecret, u.MFAEnrolledAt, u.RecoveryCodes = nil, time.Time{}, nil
			ts, err := s.store.TenantSettings(ctx, p.Tenant.ID)
			if err != nil {
				return err
			}
			switch {
			case u.External != "":
				note = "the user " + u.Name + " is signed out everywhere; it signs in at the tenant's OpenID provider, whose own second factor applies"
			case ts.RequireMFA:
				note = "the user " + u.Name + " is signed out everywhere; at the next sign-in with the password, the sign-in page asks to enrol a new authenticator app (a QR code) and shows new recovery codes; the old codes no longer work"
			default:
				note = "the user " + u.Name + " is signed out everywhere; the old authenticator app and recovery codes no longer work, and the password alone signs in, since " + p.Tenant.Domain + " does not require a second factor ('sallyport admin tenant set --require-mfa' makes the user enrol again at the next sign-in)"
			}
		}
		if err := s.directoryChanged(ctx); err != nil {
			return err
		}
		ended := fmt.Sprintf(" (%d session%s ended)", n, plural(n))
		if change == "enabled" {
			ended = ""
		}
		s.events.Event(eventlog.UserAccessChanged, fmt.Sprintf("User %s of %s was %s by %s%s", u.Name, p.Tenant.Domain, what, p.User.Name, ended),
			"tenant", p.Tenant.Domain, "member", u.Name, "change", change, "sessions", fmt.Sprint(n), "user", p.User.Name)
		d, err := s.userDetail(ctx, p.Tenant, u)
		if err != nil {
			return err
		}
		d.SessionsEnded, d.Note = n, note
		writeJSON(w, http.StatusOK, d)
		return nil
	}
}
