// The alerts part's face (DESIGN §1). Its issue builds it; nothing is exported yet.
export {};
