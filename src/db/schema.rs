// Hand-kept, portable schema: only Text, Integer, BigInt, Bool and Timestamp,
// so that one set of queries serves SQLite and PostgreSQL.

diesel::table! {
    tenants (id) {
        id -> Text,
        parent_id -> Nullable<Text>,
        path -> Text,
        depth -> Integer,
        name -> Text,
        disable_containers_for_subtenants -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    merchants (id) {
        id -> Text,
        tenant_id -> Text,
        tenant_path -> Text,
        name -> Text,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        password_hash -> Text,
        role -> Text,
        tenant_id -> Nullable<Text>,
        merchant_id -> Nullable<Text>,
        scope_path -> Nullable<Text>,
        active -> Bool,
        session_epoch -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        last_login_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    login_throttle (key) {
        key -> Text,
        failures -> Integer,
        first_failure_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Text,
        at -> Timestamp,
        actor_id -> Nullable<Text>,
        actor_name -> Text,
        tenant_id -> Nullable<Text>,
        tenant_path -> Nullable<Text>,
        merchant_id -> Nullable<Text>,
        action -> Text,
        object_type -> Text,
        object_id -> Text,
        summary -> Text,
        changes -> Text,
    }
}

diesel::joinable!(merchants -> tenants (tenant_id));

diesel::allow_tables_to_appear_in_same_query!(tenants, merchants, users, login_throttle, audit_log);
