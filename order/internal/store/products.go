package store

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"example.com/shop/order/internal/order"
)

// Products lists the active catalog by name.
func (s *Store) Products(ctx context.Context) ([]order.Product, error) {
	var rows []productRow
	if err := s.db.WithContext(ctx).Where("active = ?", true).Order("name, id").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]order.Product, len(rows))
	for i, r := range rows {
		out[i] = r.domain()
	}
	return out, nil
}

// Product returns an active product; a retired one is order.ErrProductNotFound, as it is
// no longer part of the catalog.
func (s *Store) Product(ctx context.Context, id string) (order.Product, error) {
	r, err := findProduct(s.db.WithContext(ctx), id)
	if err != nil {
		return order.Product{}, err
	}
	if !r.Active {
		return order.Product{}, order.ErrProductNotFound
	}
	return r.domain(), nil
}

// findProduct loads a product whether active or retired.
func findProduct(db *gorm.DB, id string) (productRow, error) {
	var r productRow
	if !order.ValidID(id) {
		return r, order.ErrProductNotFound
	}
	err := db.Where("id = ?", id).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return r, order.ErrProductNotFound
	}
	return r, err
}

// CreateProduct adds a product to the catalog; it is active unless in says otherwise. in
// must have passed Normalize.
func (s *Store) CreateProduct(ctx context.Context, in order.ProductInput) (order.Product, error) {
	r := productRow{
		ID: uuid.Must(uuid.NewV7()).String(), Name: in.Name, Description: in.Description,
		PriceAmount: in.Price.Amount, PriceCurrency: in.Price.Currency, Stock: in.Stock, Active: true,
	}
	if in.Active != nil {
		r.Active = *in.Active
	}
	if err := s.db.WithContext(ctx).Create(&r).Error; err != nil {
		return order.Product{}, err
	}
	return r.domain(), nil
}

// UpdateProduct replaces what an admin may set on a product, retired or not, and returns
// it as it was and as it is now (for the audit log). Orders already placed keep the name
// and price they were sold at.
func (s *Store) UpdateProduct(ctx context.Context, id string, in order.ProductInput) (before, after order.Product, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		r, err := findProduct(tx, id)
		if err != nil {
			return err
		}
		before = r.domain()
		r.Name, r.Description, r.Stock = in.Name, in.Description, in.Stock
		r.PriceAmount, r.PriceCurrency = in.Price.Amount, in.Price.Currency
		if in.Active != nil {
			r.Active = *in.Active
		}
		// Select names every column, so zero values (stock 0, inactive) are written too.
		if err := tx.Model(&r).Select("name", "description", "price_amount", "price_currency", "stock", "active").Updates(&r).Error; err != nil {
			return err
		}
		after = r.domain()
		return nil
	})
	return before, after, err
}

// RetireProduct hides a product from the catalog; it stays in the database because orders
// refer to it. changed is false when it was already retired.
func (s *Store) RetireProduct(ctx context.Context, id string) (changed bool, err error) {
	if !order.ValidID(id) {
		return false, order.ErrProductNotFound
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&productRow{}).Where("id = ? AND active = ?", id, true).Update("active", false)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 1 {
			changed = true
			return nil
		}
		_, err := findProduct(tx, id) // not found, or already retired
		return err
	})
	return changed, err
}
