package store

import (
	"time"

	"gorm.io/gorm"

	"example.com/shop/order/internal/order"
)

// Row types: the live mapping of the tables that migrations.go creates. They stay inside
// this package; the rest of the service sees only the domain types of package order.

type productRow struct {
	ID            string
	Name          string
	Description   string
	PriceAmount   int64
	PriceCurrency string
	Stock         int
	Active        bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

func (productRow) TableName() string { return "products" }

func (r productRow) domain() order.Product {
	return order.Product{
		ID: r.ID, Name: r.Name, Description: r.Description,
		Price: order.Money{Amount: r.PriceAmount, Currency: r.PriceCurrency},
		Stock: r.Stock, Active: r.Active, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

type orderRow struct {
	ID               string
	Number           int64
	UserID           string
	IdempotencyKey   *string
	RequestHash      string
	Customer         string
	Status           string
	Currency         string
	TotalAmount      int64
	RefundedAmount   int64
	PaymentID        *string
	PaymentAttempts  int
	PaymentStartedAt *time.Time
	PaymentDueAt     *time.Time
	CancelReason     *string
	CreatedAt        time.Time
	UpdatedAt        time.Time
	// DeletedAt makes GORM leave deleted orders out of every query unless Unscoped.
	DeletedAt gorm.DeletedAt

	Items []orderItemRow `gorm:"foreignKey:OrderID"`
}

func (orderRow) TableName() string { return "orders" }

func (r orderRow) domain() order.Order {
	o := order.Order{
		ID: r.ID, Number: r.Number, UserID: r.UserID, Customer: r.Customer, Status: order.Status(r.Status),
		Total:           order.Money{Amount: r.TotalAmount, Currency: r.Currency},
		Refunded:        order.Money{Amount: r.RefundedAmount, Currency: r.Currency},
		PaymentAttempts: r.PaymentAttempts,
		CreatedAt:       r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
		Items: make([]order.Item, len(r.Items)),
	}
	if r.PaymentID != nil {
		o.PaymentID = *r.PaymentID
	}
	if r.PaymentStartedAt != nil {
		o.PaymentStartedAt = r.PaymentStartedAt.UTC()
	}
	if r.PaymentDueAt != nil {
		o.PaymentDueAt = r.PaymentDueAt.UTC()
	}
	if r.CancelReason != nil {
		o.CancelReason = order.CancelReason(*r.CancelReason)
	}
	for i, it := range r.Items {
		o.Items[i] = order.Item{
			ProductID: it.ProductID, Name: it.Name, Quantity: it.Quantity,
			UnitPrice: order.Money{Amount: it.UnitPriceAmount, Currency: it.Currency},
			LineTotal: order.Money{Amount: it.LineTotalAmount, Currency: it.Currency},
		}
	}
	return o
}

type orderItemRow struct {
	OrderID         string
	Position        int
	ProductID       string
	Name            string
	Currency        string
	UnitPriceAmount int64
	Quantity        int
	LineTotalAmount int64
}

func (orderItemRow) TableName() string { return "order_items" }

type auditRow struct {
	ID            int64
	At            time.Time
	ActorSubject  string
	ActorUsername string
	Action        string
	TargetID      string
	Details       string
	RequestID     string
}

func (auditRow) TableName() string { return "audit_log" }
