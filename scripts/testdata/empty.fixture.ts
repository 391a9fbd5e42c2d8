// Defines no test: the reporter must record that this file ran none.
export {};
