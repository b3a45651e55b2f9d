package session

import (
	"errors"
	"log/slog"
	"slices"
	"time"
)

// State is everything the webapp remembers about one browser. It is stored server-side
// only; nothing in it is ever written to a page, a cookie or a URL except the cart and the
// user's display name.
type State struct {
	// Created starts the absolute lifetime; a login restarts it.
	Created time.Time
	Cart    Cart
	// User and Tokens are set while logged in, and cleared together.
	User   *User
	Tokens *Tokens
	// Logins are the authorization requests in flight, newest last (several tabs may start
	// a login at once; each callback must find its own).
	Logins []PendingLogin
	// Flashes are one-time messages shown on the next page.
	Flashes []Flash
	// LastCheckout remembers the order the last checkout form created, so a double submit
	// of that form (the cart is already empty then) lands on the same order.
	LastCheckout *Checkout
}

// User is who is logged in, from the verified ID and access tokens.
type User struct {
	Subject  string
	Username string
	Name     string
	Email    string
	// SessionID is Keycloak's `sid`, which back-channel logout names.
	SessionID string
	// Roles and Scopes come from the access token, which is what the API will judge.
	Roles   []string
	Scopes  []string
	LoginAt time.Time
}

// HasRole reports whether the user's current access token carries the realm role.
func (u *User) HasRole(role string) bool { return u != nil && slices.Contains(u.Roles, role) }

// HasScope reports whether the user's current access token was granted scope.
func (u *User) HasScope(scope string) bool { return u != nil && slices.Contains(u.Scopes, scope) }

// DisplayName is the name shown in the page header.
func (u *User) DisplayName() string {
	if u.Name != "" {
		return u.Name
	}
	return u.Username
}

// Tokens are the user's OAuth tokens. They stay in the session record on the server.
type Tokens struct {
	Access  string
	Refresh string
	ID      string
	// Expiry is when the access token stops working.
	Expiry time.Time
	// DPoPKey is the private key the access token is bound to (PKCS #8): every API call
	// carries a proof signed with it. It lives only here, server-side, and in no log.
	DPoPKey Secret
}

// Secret is key material kept in a session. It prints as a placeholder, so a log line or
// error that mentions it by accident shows nothing.
type Secret []byte

// String implements fmt.Stringer.
func (Secret) String() string { return "[secret]" }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue("[secret]") }

// PendingLogin is one authorization request sent to Keycloak and not yet answered.
type PendingLogin struct {
	State    string
	Nonce    string
	Verifier string // PKCE code verifier; only its S256 challenge leaves the server
	Next     string // local path to return to
	// StepUp marks the request for the admin:read scope.
	StepUp  bool
	Started time.Time
	// DPoPKey is the key made for this login: the code is bound to it at the PAR request,
	// and the tokens at the token request. It moves to Tokens on success.
	DPoPKey Secret
}

// Flash kinds: status for news, alert for problems (the ARIA roles they are shown with).
const (
	FlashStatus = "status"
	FlashAlert  = "alert"
)

// Flash is a one-time message for the next page.
type Flash struct {
	Kind string
	Text string
}

// Checkout ties a checkout form's idempotency key to the order it created.
type Checkout struct {
	Key     string
	OrderID string
}

// LoggedIn reports whether a user is logged in.
func (s *State) LoggedIn() bool { return s.User != nil && s.Tokens != nil }

// LogIn records a successful login; pending logins are done with.
func (s *State) LogIn(u *User, t *Tokens) {
	s.User, s.Tokens, s.Logins = u, t, nil
}

// LogOut forgets the user and their tokens and keeps the cart.
func (s *State) LogOut() {
	s.User, s.Tokens, s.LastCheckout = nil, nil, nil
}

// maxPendingLogins bounds the logins in flight per session; the oldest gives way.
const maxPendingLogins = 5

// loginTTL is how long a user may spend on Keycloak's login page.
const loginTTL = 10 * time.Minute

// AddLogin remembers an authorization request.
func (s *State) AddLogin(l PendingLogin) {
	s.Logins = append(s.Logins, l)
	if len(s.Logins) > maxPendingLogins {
		s.Logins = slices.Delete(s.Logins, 0, len(s.Logins)-maxPendingLogins)
	}
}

// TakeLogin removes and returns the pending login with the given state. Each state is good
// for one callback only, so a replayed callback finds nothing.
func (s *State) TakeLogin(state string, now time.Time) (PendingLogin, bool) {
	if state == "" {
		return PendingLogin{}, false
	}
	for i, l := range s.Logins {
		if l.State == state {
			s.Logins = slices.Delete(s.Logins, i, i+1)
			if now.Sub(l.Started) > loginTTL {
				return PendingLogin{}, false
			}
			return l, true
		}
	}
	return PendingLogin{}, false
}

// AddFlash queues a message for the next page.
func (s *State) AddFlash(kind, text string) {
	s.Flashes = append(s.Flashes, Flash{Kind: kind, Text: text})
}

// TakeFlashes returns the queued messages and forgets them.
func (s *State) TakeFlashes() []Flash {
	f := s.Flashes
	s.Flashes = nil
	return f
}

// Cart limits keep a session record small whatever a client posts. They are the order
// service's default limits of one order (ORDER_MAX_LINES, ORDER_MAX_QUANTITY), so a cart
// can always be ordered as it is.
const (
	MaxCartLines    = 20
	MaxLineQuantity = 10
)

// Cart errors, written for the shopper.
var (
	ErrCartFull    = errors.New("your cart is full: an order takes at most 20 different products; check out or remove something first")
	ErrBadQuantity = errors.New("choose a quantity between 1 and 10")
)

// Cart is what the shopper intends to buy: product ids and quantities only. Names and prices
// are looked up from the catalog when shown, and the order service prices the order itself.
type Cart []CartLine

// CartLine is one product in the cart.
type CartLine struct {
	ProductID string
	Quantity  int
}

// Count is the number of items in the cart.
func (c Cart) Count() int {
	n := 0
	for _, l := range c {
		n += l.Quantity
	}
	return n
}

// Add puts quantity more of the product into the cart, capped per line.
func (c *Cart) Add(productID string, quantity int) error {
	if quantity < 1 || quantity > MaxLineQuantity {
		return ErrBadQuantity
	}
	for i := range *c {
		if (*c)[i].ProductID == productID {
			(*c)[i].Quantity = min((*c)[i].Quantity+quantity, MaxLineQuantity)
			return nil
		}
	}
	if len(*c) >= MaxCartLines {
		return ErrCartFull
	}
	*c = append(*c, CartLine{ProductID: productID, Quantity: quantity})
	return nil
}

// Set changes the quantity of a product already in the cart; zero removes it.
func (c *Cart) Set(productID string, quantity int) error {
	if quantity < 0 || quantity > MaxLineQuantity {
		return ErrBadQuantity
	}
	for i := range *c {
		if (*c)[i].ProductID == productID {
			if quantity == 0 {
				*c = slices.Delete(*c, i, i+1)
			} else {
				(*c)[i].Quantity = quantity
			}
			return nil
		}
	}
	return nil
}
